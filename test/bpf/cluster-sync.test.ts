// Cluster nodes in one process, each with its own loaded data plane (real
// BPF maps) and a real mTLS sync transport on loopback: join, on-demand
// replication to the backup group, failover with re-replication, a node
// joining late, drain, a flow fetch, and a run-time sync mode switch. The
// packet path and the multi-namespace lab are tested elsewhere; this is the
// controller's cluster logic against the real maps and the real transport.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey, type FlowEntry, type FlowKey } from '../../control/src/bpf/codec.js';
import { ConnTable } from '../../control/src/bpf/conn-table.js';
import { mapLookup } from '../../control/src/bpf/libbpf.js';
import { bucketOf, SW_BUCKETS } from '../../control/src/cluster/bucket.js';
import { caFiles, createClusterCa, createNodeCert, nodeFiles } from '../../control/src/cluster/certs.js';
import { ClusterNode } from '../../control/src/cluster/cluster-node.js';
import type { ClusterConfig } from '../../control/src/config/schema.js';
import { monotonicNs } from '../../control/src/engine/engine.js';
import { FlowEventFeed } from '../../control/src/engine/flow-events.js';
import { EventType, FlowFlag, MapName, PuntMetaLayout, PuntSmallLayout, TcpWindowFlag } from '../../control/src/gen/layout.js';
import { ClusterExpectationSync } from '../../control/src/helpers/expectation-sync.js';
import { ExpectationTable } from '../../control/src/helpers/expectations.js';
import { createLogger } from '../../control/src/log.js';
import { TestDataplane } from './harness.js';

const CLUSTER = 'synctest';
const BASE_PORT = 20000 + Math.floor(Math.random() * 20000);
const log = createLogger(process.env.SW_TEST_LOG === '1' ? 'info' : 'silent');

interface TestNode {
  id: number;
  dp: TestDataplane;
  table: ConnTable;
  events: FlowEventFeed;
  node: ClusterNode;
  reinjected: Uint8Array[];
  /** The node's helper expectations (common state outside the table). */
  expectations: ExpectationTable;
}

let dir: string;
const nodes = new Map<number, TestNode>();

function config(id: number, all: number[]): ClusterConfig {
  return {
    id: CLUSTER,
    nodeId: id,
    mode: 'load-sharing',
    backups: 1,
    listen: `127.0.0.1:${BASE_PORT + id}`,
    peers: all.filter((p) => p !== id).map((p) => ({ id: p, address: `127.0.0.1:${BASE_PORT + p}` })),
    tls: { ca: caFiles(dir).cert, ...nodeFiles(dir, id) },
    mac: '03:53:57:00:00:01',
    addresses: [],
    heartbeatMs: 50,
    failureTimeoutMs: 250,
    sync: { node: 'combined', common: 'combined', periodicIntervalMs: 60_000 },
  };
}

function startNode(id: number, all: number[]): { node: TestNode; started: Promise<void> } {
  const dp = TestDataplane.load({ connEntries: 4096 });
  const table = new ConnTable(dp.obj.mapFd(MapName.sw_conns), 256);
  const events = new FlowEventFeed();
  const reinjected: Uint8Array[] = [];
  const node = new ClusterNode({
    config: config(id, all),
    interfaces: [],
    maps: dp.clusterMapFds(),
    table,
    injector: { reinject: (frame) => void reinjected.push(frame.slice()) },
    events,
    log: log.child({ n: id }),
    monotonicNs,
    lastSeenGranularityNs: 1_000_000_000n,
    chunk: 512,
  });
  const expectations = new ExpectationTable(() => performance.now());
  node.shareExpectations({
    applyPeer: (add, remove) => {
      for (const r of add) expectations.put(r);
      for (const r of remove) expectations.remove(r);
    },
    live: () => expectations.live(),
  });
  const t = { id, dp, table, events, node, reinjected, expectations };
  nodes.set(id, t);
  return { node: t, started: node.start() };
}

async function stopNode(id: number): Promise<void> {
  const t = nodes.get(id)!;
  nodes.delete(id);
  await t.node.stop();
  t.dp.close();
}

async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const keyBuf = (k: FlowKey): Uint8Array => {
  const b = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(b, 0, k);
  return b;
};
const bucketOfKey = (k: FlowKey): number => bucketOf(keyBuf(k), 0);
const flow = (n: number): FlowKey => ({ family: 4, proto: 6, addrA: new Uint8Array([10, 0, (n >> 8) & 255, n & 255]), addrB: new Uint8Array([10, 1, 0, 1]), portA: 2000 + n, portB: 80 });

function entryOf(t: TestNode, k: FlowKey): FlowEntry | undefined {
  const v = new Uint8Array(FLOW_ENTRY_SIZE);
  return t.table.lookupRaw(keyBuf(k), v) ? flowEntry.decode(v, 0) : undefined;
}

/** A flow established on node t (as the data plane would leave it) and its state event. */
function establish(t: TestNode, k: FlowKey, version = 3, flags: number = FlowFlag.FLOW_F_ORIG_A): void {
  const v = new Uint8Array(FLOW_ENTRY_SIZE);
  const now = monotonicNs();
  const w = { end: 1000, maxEnd: 66000, maxWin: 65000, maxAck: 500, scale: 7, flags: TcpWindowFlag.TCPW_F_WINDOW_SCALE };
  flowEntry.encode(v, 0, { state: 3, flags, helper: 0, lastDir: 1, ownerNode: t.id, ruleId: 9, version, win: [w, w], lastSeenNs: now, packets: [5n, 4n], bytes: [500n, 400n], createdNs: now - 5_000_000_000n, origIfindex: 3 });
  t.table.upsertBatch(keyBuf(k), v, 1);
  t.events.stateChanged({ type: EventType.EV_STATE, oldState: 2, newState: 3, version, tsNs: now, key: k, ruleId: 9, flags });
}

function ownerArray(t: TestNode): number[] {
  const key = new Uint8Array(4);
  const value = new Uint8Array(4);
  const out: number[] = [];
  for (let b = 0; b < SW_BUCKETS; b++) {
    new DataView(key.buffer).setUint32(0, b, true);
    mapLookup(t.dp.obj.mapFd(MapName.sw_bucket_owner), key, value);
    out.push(new DataView(value.buffer).getUint32(0, true));
  }
  return out;
}

/** Flows whose bucket the given node owns (per node `viewer`'s table) and, if given, backs up on `backup`. */
function flowsOwnedBy(owner: number, count: number, from: number): number[] {
  const view = nodes.get(owner)!;
  const owners = ownerArray(view);
  const out: number[] = [];
  for (let n = from; out.length < count; n++) if (owners[bucketOfKey(flow(n))] === owner) out.push(n);
  return out;
}

const holders = (k: FlowKey): number[] => [...nodes.values()].filter((t) => entryOf(t, k)).map((t) => t.id).sort();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sw-cluster-sync-'));
  createClusterCa(dir, CLUSTER);
  for (const id of [1, 2, 3, 4]) createNodeCert(dir, id, CLUSTER);
});

after(async () => {
  for (const id of [...nodes.keys()]) await stopNode(id);
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster sync between in-process nodes over mTLS', { timeout: 120_000 }, () => {
  const ALL = [1, 2, 3, 4];

  it('three nodes start, become active and agree on the owner array', async () => {
    await Promise.all([1, 2, 3].map((id) => startNode(id, ALL).started));
    // Each announces 'active' when it gets there; the others follow within a heartbeat.
    await until('every node sees all three', () => [...nodes.values()].every((t) => t.node.status().members.join() === '1,2,3'));
    for (const t of nodes.values()) assert.equal(t.node.status().state, 'active');
    const owners = ownerArray(nodes.get(1)!);
    assert.deepEqual(ownerArray(nodes.get(2)!), owners);
    assert.deepEqual(ownerArray(nodes.get(3)!), owners);
    for (const id of [1, 2, 3]) assert.ok(owners.filter((o) => o === id).length > 250);
  });

  it('a state change on the owner reaches exactly its backup, marked as a replica with untrusted windows', async () => {
    const mine = flowsOwnedBy(1, 30, 0).map(flow);
    for (const k of mine) establish(nodes.get(1)!, k);
    for (const k of mine) await until('replica on the backup', () => holders(k).length === 2);
    for (const k of mine) {
      const holder = holders(k).find((id) => id !== 1)!;
      const replica = entryOf(nodes.get(holder)!, k)!;
      assert.equal(replica.flags & FlowFlag.FLOW_F_REMOTE, FlowFlag.FLOW_F_REMOTE);
      assert.equal(replica.win[0].flags & TcpWindowFlag.TCPW_F_UNTRUSTED, TcpWindowFlag.TCPW_F_UNTRUSTED);
      assert.equal(replica.version, 3);
      assert.equal(replica.packets[0], 5n);
    }
    // Common state goes to every node.
    const [common] = flowsOwnedBy(2, 1, 5000).map(flow) as [FlowKey];
    establish(nodes.get(2)!, common, 1, FlowFlag.FLOW_F_COMMON);
    await until('common state everywhere', () => holders(common).length === 3);
  });

  it("a failed node's flows stay available and every bucket regains its backup", async () => {
    const lost = flowsOwnedBy(3, 20, 10_000).map(flow);
    for (const k of lost) establish(nodes.get(3)!, k);
    for (const k of lost) await until('replicated before the failure', () => holders(k).length === 2);
    await stopNode(3);
    await until('node 3 out of the members', () => [1, 2].every((id) => nodes.get(id)!.node.status().members.join() === '1,2'));
    // Every flow node 3 owned now lives on both survivors: the new owner had the replica, and re-replicated it to the new backup.
    for (const k of lost) await until('two copies again', () => holders(k).join() === '1,2');
    const owners = ownerArray(nodes.get(1)!);
    assert.ok(owners.every((o) => o === 1 || o === 2));
    assert.deepEqual(ownerArray(nodes.get(2)!), owners);
  });

  it('a node joining later receives the state of the buckets it will own, and the live expectations, before it owns them', async () => {
    const before = flowsOwnedBy(1, 200, 20_000).map(flow);
    for (const k of before) establish(nodes.get(1)!, k);
    for (const k of before) await until('replicated', () => holders(k).length === 2);
    // An FTP data connection node 1's helper expects, published as the helper runner does.
    const expected = { family: 4, proto: 6, from: new Uint8Array([10, 1, 0, 1]), fromPort: 0, to: new Uint8Array([10, 0, 0, 7]), toPort: 50_001, helper: 1, control: before[0]!, ttlMs: 60_000 };
    nodes.get(1)!.expectations.put(expected);
    const published = new ClusterExpectationSync(nodes.get(1)!.node.commonChannel()).publish([expected], []);
    assert.equal(published.kind, 'sent');
    await until('the expectation on node 2', () => nodes.get(2)!.expectations.size === 1);
    const { started } = startNode(4, ALL);
    await started;
    await until('all see node 4', () => [1, 2, 4].every((id) => nodes.get(id)!.node.status().members.join() === '1,2,4'));
    const owners = ownerArray(nodes.get(4)!);
    const moved = before.filter((k) => owners[bucketOfKey(k)] === 4);
    assert.ok(moved.length > 20, `${moved.length} flows moved to node 4`);
    for (const k of moved) assert.ok(entryOf(nodes.get(4)!, k), 'the new owner has the entry');
    assert.ok(nodes.get(4)!.node.stats.get('bulk_entries_received') > 0);
    const [got] = nodes.get(4)!.expectations.live();
    assert.equal(nodes.get(4)!.expectations.size, 1, 'one expectation, however many peers sent it');
    assert.deepEqual({ ...got!, ttlMs: 0 }, { ...expected, ttlMs: 0 });
    assert.ok(got!.ttlMs > 50_000 && got!.ttlMs <= 60_000, `it keeps the time it had left (${got!.ttlMs} ms)`);
  });

  it('a run-time mode switch to off stops on-demand sending; back to on-demand resumes it', async () => {
    const n1 = nodes.get(1)!;
    const [a, b] = flowsOwnedBy(1, 2, 30_000).map(flow) as [FlowKey, FlowKey];
    assert.equal(n1.node.setSyncMode('node', 'off'), 'combined');
    const sentBefore = n1.node.stats.get('entries_sent_node_on_demand');
    establish(n1, a);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(n1.node.stats.get('entries_sent_node_on_demand'), sentBefore);
    assert.deepEqual(holders(a), [1]);
    n1.node.setSyncMode('node', 'on-demand');
    establish(n1, b);
    await until('replicated again', () => holders(b).length === 2);
    assert.equal(n1.node.status().syncNode, 'on-demand');
  });

  it('a mid-stream packet of a flow this node lacks is held, fetched from a peer and re-injected', async () => {
    const n1 = nodes.get(1)!;
    const [n] = flowsOwnedBy(2, 1, 40_000) as [number];
    const k = flow(n);
    establish(nodes.get(2)!, k);
    await until('replicated', () => holders(k).length === 2);
    // Node 1 does not have it (unless it is the backup: then take it away).
    n1.table.deleteBatch(keyBuf(k), 1);
    const f = PuntMetaLayout.fields;
    const data = PuntSmallLayout.fields.data.offset;
    const rec = new Uint8Array(data + 60);
    new DataView(rec.buffer).setUint16(f.type.offset, EventType.EV_FLOW_MISS, true);
    new DataView(rec.buffer).setUint16(f.cap_len.offset, 60, true);
    flowKey.write(rec, f.key.offset, k);
    rec.fill(0xab, data);
    n1.node.onFlowMiss(rec, 0);
    n1.node.flushFlowMisses();
    await until('fetched and re-injected', () => n1.reinjected.length === 1);
    assert.ok(entryOf(n1, k), 'installed');
    assert.equal(n1.reinjected[0]!.length, 60);
    assert.equal(n1.node.stats.get('fetch_ok'), 1);
  });

  it('a drained node pushes its flows to the nodes taking over and hands its buckets over', async () => {
    const n2 = nodes.get(2)!;
    const mine = flowsOwnedBy(2, 50, 50_000).map(flow);
    for (const k of mine) establish(n2, k);
    for (const k of mine) await until('replicated', () => holders(k).length === 2);
    const result = await n2.node.drain(10_000);
    assert.equal(result.acked, true);
    assert.ok(result.bucketsHandedOver > 200);
    await until('node 2 out of the members', () => [1, 4].every((id) => nodes.get(id)!.node.status().members.join() === '1,4'));
    const owners = ownerArray(nodes.get(1)!);
    assert.ok(owners.every((o) => o === 1 || o === 4));
    assert.ok(ownerArray(n2).every((o) => o !== 2), 'the drained node forwards nothing');
    for (const k of mine) await until('both remaining nodes hold it', () => [1, 4].every((id) => entryOf(nodes.get(id)!, k)));
    assert.equal(n2.node.status().state, 'draining');
  });
});
