// ConnTable and readCounters against the real maps of the XDP object (a
// small sw_conns): batched inserts, lookups, walks, deletes, and the per-CPU
// counters after packets ran through the program. Needs root.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FLOW_KEY_SIZE, flowEntry, flowKey, type FlowKey, type NewEntry } from '../../control/src/bpf/codec.js';
import { ConnTable, ConnTableError } from '../../control/src/bpf/conn-table.js';
import { readCounters } from '../../control/src/bpf/counters.js';
import { BpfObject, mapUpdate, progTestRun } from '../../control/src/bpf/libbpf.js';
import { DpConfigLayout, FlowFlag, FlowState, MapName, ProgName, RodataVar, SwCounter } from '../../control/src/gen/layout.js';
import { buildFrame } from '../../control/src/net/packet.js';

const OBJ = resolve(fileURLToPath(new URL('../..', import.meta.url)), 'build/syncwall.bpf.o');
const TABLE_SIZE = 16384;
const FLOWS = 10_000;

function load(tableSize: number): BpfObject {
  assert.ok(existsSync(OBJ), `${OBJ} is missing: run make`);
  const obj = BpfObject.open(OBJ);
  obj.setMapMaxEntries(MapName.sw_conns, tableSize);
  const rodata = obj.rodata();
  rodata.writeBigUInt64LE(1n << 40n, RodataVar.sw_cfg.offset + DpConfigLayout.fields.punt_rate.offset);
  rodata.writeBigUInt64LE(1n << 40n, RodataVar.sw_cfg.offset + DpConfigLayout.fields.punt_burst.offset);
  obj.load();
  return obj;
}

/** Flow i: TCP 10.(i>>8).(i&255).1:(1024+i) <-> 192.168.0.1:443, opened by A. */
function key(i: number): FlowKey {
  return {
    family: 4,
    proto: 6,
    addrA: Uint8Array.of(10, (i >> 8) & 255, i & 255, 1),
    addrB: Uint8Array.of(192, 168, 0, 1),
    portA: 1024 + i,
    portB: 443,
  };
}

function keyBytes(i: number): Uint8Array {
  const b = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(b, 0, key(i));
  return b;
}

function newEntry(i: number): NewEntry {
  return { flags: FlowFlag.FLOW_F_ORIG_A, ruleId: i, helper: 0, ownerNode: 0, origIfindex: 2, createdNs: BigInt(i) * 1000n };
}

/** Queues and flushes flows [from, to) in batches of the table's insert capacity. */
function insert(table: ConnTable, from: number, to: number): void {
  const kb = new Uint8Array(FLOW_KEY_SIZE);
  for (let i = from; i < to; ) {
    const end = Math.min(to, i + table.insertCapacity);
    for (; i < end; i++) {
      flowKey.write(kb, 0, key(i));
      table.queueInsert(kb, 0, newEntry(i));
    }
    assert.deepEqual([...table.flushInserts()], []);
  }
}

/** Ruleid of every entry, via the chunked walk. */
async function ruleIds(table: ConnTable, chunk: number): Promise<number[]> {
  const ids: number[] = [];
  await table.scan((kb, ko, vb, vo) => {
    const id = flowEntry.ruleId(vb, vo);
    assert.equal(flowKey.portA(kb, ko), 1024 + id, 'key and value of one entry');
    ids.push(id);
  }, chunk);
  return ids.sort((a, b) => a - b);
}

describe('ConnTable on sw_conns', { timeout: 60_000 }, () => {
  let obj: BpfObject;
  let table: ConnTable;
  before(() => {
    obj = load(TABLE_SIZE);
    table = new ConnTable(obj.mapFd(MapName.sw_conns), 4096);
  });
  after(() => obj.close());

  it('inserts 10k flows in batches and finds each one', async () => {
    insert(table, 0, FLOWS);
    assert.equal(table.count(), FLOWS);
    for (const i of [0, 1, 4095, 4096, 7777, FLOWS - 1]) {
      assert.deepEqual(table.lookup(keyBytes(i)), {
        state: FlowState.FS_NONE,
        flags: FlowFlag.FLOW_F_ORIG_A,
        helper: 0,
        lastDir: 0,
        ownerNode: 0,
        ruleId: i,
        version: 0,
        win: [
          { end: 0, maxEnd: 0, maxWin: 0, maxAck: 0, scale: 0, flags: 0 },
          { end: 0, maxEnd: 0, maxWin: 0, maxAck: 0, scale: 0, flags: 0 },
        ],
        lastSeenNs: BigInt(i) * 1000n,
        packets: [0n, 0n],
        bytes: [0n, 0n],
        createdNs: BigInt(i) * 1000n,
        origIfindex: 2,
      });
    }
    assert.equal(table.lookup(keyBytes(FLOWS)), undefined);
  });

  it('visits every entry exactly once, whatever the chunk size', async () => {
    const all = [...Array(FLOWS).keys()];
    assert.deepEqual(await ruleIds(table, 4096), all);
    assert.deepEqual(await ruleIds(table, 333), all);
    let chunks = 0;
    const visited = await table.scanChunks(1000, (_k, _v, count) => {
      assert.ok(count <= 1000);
      chunks++;
    });
    assert.equal(visited, FLOWS);
    assert.ok(chunks >= 10);
  });

  it('stops a walk when the visitor returns false', async () => {
    let seen = 0;
    await table.scan(() => ++seen < 5, 64);
    assert.equal(seen, 5);
  });

  it('keeps a live entry when an admitted flow is inserted again', () => {
    const kb = keyBytes(42);
    const live = table.lookup(kb)!;
    live.state = FlowState.FS_ESTABLISHED;
    live.version = 3;
    const vb = new Uint8Array(flowEntry.size);
    flowEntry.encode(vb, 0, live);
    mapUpdate(obj.mapFd(MapName.sw_conns), kb, vb);
    table.queueInsert(kb, 0, newEntry(42));
    assert.equal(table.flushInserts().size, 0);
    assert.equal(table.lookup(kb)?.state, FlowState.FS_ESTABLISHED);
    assert.equal(table.lookup(kb)?.version, 3);
  });

  it('refuses to queue more than its capacity', () => {
    const small = new ConnTable(obj.mapFd(MapName.sw_conns), 2);
    const kb = keyBytes(FLOWS + 1);
    small.queueInsert(kb, 0, newEntry(1));
    small.queueInsert(kb, 0, newEntry(1));
    assert.throws(() => small.queueInsert(kb, 0, newEntry(1)), ConnTableError);
    small.flushInserts();
    assert.ok(small.delete(kb));
  });

  it('deletes a batch with missing keys among it, reporting the deleted ones first', () => {
    // Flows 100..109, with 103 and 107 already gone and one never inserted.
    assert.ok(table.delete(keyBytes(103)));
    assert.ok(!table.delete(keyBytes(103)));
    assert.ok(table.delete(keyBytes(107)));
    const ids = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, FLOWS + 5];
    const keys = new Uint8Array(ids.length * FLOW_KEY_SIZE);
    ids.forEach((id, n) => keys.set(keyBytes(id), n * FLOW_KEY_SIZE));
    const deleted = table.deleteBatch(keys, ids.length);
    assert.equal(deleted, 8);
    const reported = [...Array(deleted).keys()].map((n) => flowKey.portA(keys, n * FLOW_KEY_SIZE) - 1024);
    assert.deepEqual(reported, [100, 101, 102, 104, 105, 106, 108, 109]);
    for (const id of ids) assert.equal(table.lookup(keyBytes(id)), undefined);
    assert.equal(table.count(), FLOWS - 10);
  });

  it('deletes everything in chunks while walking', async () => {
    const doomed = new Uint8Array(512 * FLOW_KEY_SIZE);
    let deleted = 0;
    await table.scanChunks(512, (keys, _values, count) => {
      doomed.set(keys.subarray(0, count * FLOW_KEY_SIZE));
      deleted += table.deleteBatch(doomed, count);
    });
    assert.equal(deleted, FLOWS - 10);
    assert.equal(table.count(), 0);
  });
});

describe('ConnTable on a full table', () => {
  it('reports the inserts that did not fit, by slot', () => {
    const obj = load(8);
    try {
      const table = new ConnTable(obj.mapFd(MapName.sw_conns), 16);
      const kb = new Uint8Array(FLOW_KEY_SIZE);
      for (let i = 0; i < 10; i++) {
        flowKey.write(kb, 0, key(i));
        assert.equal(table.queueInsert(kb, 0, newEntry(i)), i);
      }
      const failed = table.flushInserts();
      assert.deepEqual([...failed.keys()], [8, 9]);
      assert.equal(failed.get(8)?.code, 'E2BIG');
      assert.equal(table.count(), 8);
    } finally {
      obj.close();
    }
  });
});

describe('readCounters', () => {
  it('sums the per-CPU counters under their enum names', () => {
    const obj = load(64);
    try {
      const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 5353, dport: 53, payload: new Uint8Array(18) } });
      const prog = obj.programFd(ProgName.xdp_syncwall);
      for (let i = 0; i < 5; i++) progTestRun(prog, { data: frame });
      const counters = readCounters(obj.mapFd(MapName.sw_counters));
      const names = Object.keys(SwCounter).filter((n) => n !== 'CNT__MAX').map((n) => n.slice(4).toLowerCase());
      assert.deepEqual(Object.keys(counters).sort(), names.sort());
      assert.equal(counters.rx, 5n);
      assert.equal(counters.punt_new, 5n);
      assert.equal(counters.drop_out_of_window, 0n);
    } finally {
      obj.close();
    }
  });
});
