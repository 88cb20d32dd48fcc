// RingBufferConsumer against the real punt ring of the XDP object, fed by the
// program itself: UDP frames with no connection entry, run through
// BPF_PROG_TEST_RUN, become punt records. Needs root.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { flowKey, puntMeta, type FlowKey } from '../../control/src/bpf/codec.js';
import { BpfObject, pageSize, progTestRun } from '../../control/src/bpf/libbpf.js';
import { RingBufferConsumer, type RingBufferOptions } from '../../control/src/bpf/ringbuf.js';
import { DpConfigLayout, EventType, MapName, ProgName, PuntMetaLayout, RodataVar } from '../../control/src/gen/layout.js';

const OBJ = resolve(fileURLToPath(new URL('../..', import.meta.url)), 'build/syncwall.bpf.o');
const XDP_DROP = 1;
/** Small enough that a few dozen punts fill it, so the tests wrap around. */
const RING_SIZE = 4 * pageSize();
const BATCH = 24;

/** Ethernet + IPv4 + UDP 10.0.0.1:(1000+seq) -> 10.0.0.2:53, payload: seq (u32 LE) and filler. */
function udpFrame(seq: number): Uint8Array {
  const payload = 16;
  const f = new Uint8Array(14 + 20 + 8 + payload);
  const dv = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
  dv.setUint16(12, 0x0800);
  f.set([0x45, 0, 0, 20 + 8 + payload, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += dv.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  dv.setUint16(24, ~sum & 0xffff);
  dv.setUint16(34, 1000 + (seq % 60000));
  dv.setUint16(36, 53);
  dv.setUint16(38, 8 + payload);
  dv.setUint32(42, seq, true);
  f.fill(0xab, 46);
  return f;
}

interface Loaded {
  obj: BpfObject;
  progFd: number;
  ringFd: number;
}

function load(): Loaded {
  assert.ok(existsSync(OBJ), `${OBJ} is missing: run make`);
  const obj = BpfObject.open(OBJ);
  obj.setMapMaxEntries(MapName.sw_punt_ring, RING_SIZE);
  // Lift the punt rate limit: these tests are about the ring, not the bucket.
  const rodata = obj.rodata();
  const cfg = RodataVar.sw_cfg.offset;
  rodata.writeBigUInt64LE(1n << 40n, cfg + DpConfigLayout.fields.punt_rate.offset);
  rodata.writeBigUInt64LE(1n << 40n, cfg + DpConfigLayout.fields.punt_burst.offset);
  obj.load();
  return { obj, progFd: obj.programFd(ProgName.xdp_syncwall), ringFd: obj.mapFd(MapName.sw_punt_ring) };
}

/** A received punt, copied out of the ring. */
interface Punt {
  seq: number;
  type: number;
  capLen: number;
  /** Bytes the record took in the ring: header and padding included. */
  ringBytes: number;
  frame: Uint8Array;
  /** The rest of punt_meta, as the data plane parsed the frame. */
  meta: { pktLen: number; ifindex: number; l3Off: number; l4Off: number; srcIsA: boolean; key: FlowKey };
}

/** Collects punts and resolves waiters when a count is reached. */
class Collector {
  readonly punts: Punt[] = [];
  readonly errors: unknown[] = [];
  readonly batches: number[] = [];
  private inBatch = 0;
  private waiter: { count: number; resolve: () => void } | undefined;

  onRecord(buf: Uint8Array, off: number, len: number): void {
    assert.ok(len >= PuntMetaLayout.size, `record of ${len} bytes`);
    const capLen = puntMeta.capLen(buf, off);
    const data = puntMeta.dataOffset(off);
    const frame = buf.slice(data, data + capLen);
    const ringBytes = (len + 8 + 7) & ~7;
    const meta = {
      pktLen: puntMeta.pktLen(buf, off),
      ifindex: puntMeta.ifindex(buf, off),
      l3Off: puntMeta.l3Off(buf, off),
      l4Off: puntMeta.l4Off(buf, off),
      srcIsA: puntMeta.srcIsA(buf, off),
      key: flowKey.read(buf, puntMeta.keyOffset(off)),
    };
    const seq = new DataView(frame.buffer).getUint32(42, true);
    this.punts.push({ seq, type: puntMeta.type(buf, off), capLen, ringBytes, frame, meta });
    this.inBatch++;
  }

  onBatchEnd(): void {
    this.batches.push(this.inBatch);
    this.inBatch = 0;
    if (this.waiter && this.punts.length >= this.waiter.count) this.waiter.resolve();
  }

  onError(err: unknown): void {
    this.errors.push(err);
  }

  /** Consumer options that feed this collector. */
  options(extra: Partial<RingBufferOptions> = {}): RingBufferOptions {
    return {
      mapFd: 0,
      size: RING_SIZE,
      onRecord: (buf, off, len) => this.onRecord(buf, off, len),
      onBatchEnd: () => this.onBatchEnd(),
      onError: (err) => this.onError(err),
      ...extra,
    };
  }

  until(count: number): Promise<void> {
    if (this.punts.length >= count) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = { count, resolve }));
  }
}

function started(opts: RingBufferOptions): RingBufferConsumer {
  const rb = new RingBufferConsumer(opts);
  rb.start();
  return rb;
}

function punt(progFd: number, from: number, count: number): void {
  for (let seq = from; seq < from + count; seq++) {
    assert.equal(progTestRun(progFd, { data: udpFrame(seq) }).retval, XDP_DROP, `frame ${seq} was not punted`);
  }
}

describe('RingBufferConsumer on sw_punt_ring', { timeout: 30_000 }, () => {
  let dp: Loaded;
  before(() => (dp = load()));
  after(() => dp.obj.close());

  it('delivers every punt once, in order, with its whole frame', async () => {
    const c = new Collector();
    const rb = started(c.options({ mapFd: dp.ringFd }));
    try {
      punt(dp.progFd, 0, BATCH);
      await c.until(BATCH);
      assert.deepEqual(c.errors, []);
      assert.deepEqual(c.punts.map((p) => p.seq), [...Array(BATCH).keys()]);
      for (const p of c.punts) {
        assert.equal(p.type, EventType.EV_PUNT);
        assert.deepEqual(p.frame, udpFrame(p.seq));
        // BPF_PROG_TEST_RUN without a context runs as if received on loopback.
        assert.deepEqual(p.meta, {
          pktLen: p.frame.length,
          ifindex: 1,
          l3Off: 14,
          l4Off: 34,
          srcIsA: true,
          key: { family: 4, proto: 17, addrA: Uint8Array.of(10, 0, 0, 1), addrB: Uint8Array.of(10, 0, 0, 2), portA: 1000 + p.seq, portB: 53 },
        });
      }
    } finally {
      rb.close();
    }
  });

  it('keeps order across many wrap-arounds of the ring', async () => {
    const c = new Collector();
    const rb = started(c.options({ mapFd: dp.ringFd }));
    const rounds = 40;
    try {
      for (let r = 0; r < rounds; r++) {
        punt(dp.progFd, r * BATCH, BATCH);
        await c.until((r + 1) * BATCH);
      }
      const total = rounds * BATCH;
      assert.deepEqual(c.punts.map((p) => p.seq), [...Array(total).keys()]);
      const bytes = c.punts.reduce((n, p) => n + p.ringBytes, 0);
      assert.ok(bytes > 8 * RING_SIZE, `only ${bytes} bytes passed through a ${RING_SIZE}-byte ring`);
      assert.ok(c.punts.every((p, i) => p.frame.length === udpFrame(i).length));
    } finally {
      rb.close();
    }
  });

  it('hands back to the event loop after each budget', async () => {
    const c = new Collector();
    const order: string[] = [];
    const rb = started(
      c.options({
        mapFd: dp.ringFd,
        budget: 7,
        onBatchEnd: () => {
          order.push(`batch ${c.punts.length}`);
          if (order.length === 1) setImmediate(() => order.push('other work'));
          c.onBatchEnd();
        },
      }),
    );
    try {
      punt(dp.progFd, 0, BATCH);
      await c.until(BATCH);
      assert.deepEqual(c.batches, [7, 7, 7, 3]);
      assert.deepEqual(order, ['batch 7', 'other work', 'batch 14', 'batch 21', 'batch 24']);
    } finally {
      rb.close();
    }
  });

  it('reports a failing handler and goes on with the next record', async () => {
    const c = new Collector();
    const boom = new Error('handler failed');
    const rb = started(
      c.options({
        mapFd: dp.ringFd,
        onRecord: (buf, off, len) => {
          c.onRecord(buf, off, len);
          if (c.punts.length === 3) throw boom;
        },
      }),
    );
    try {
      punt(dp.progFd, 0, 5);
      await c.until(5);
      assert.deepEqual(c.errors, [boom]);
      assert.deepEqual(c.punts.map((p) => p.seq), [0, 1, 2, 3, 4]);
    } finally {
      rb.close();
    }
  });

  it('stops at once when closed from inside a handler, leaving the rest in the ring', async () => {
    const seen: number[] = [];
    let rb: RingBufferConsumer | undefined;
    const closed = new Promise<void>((resolveClosed) => {
      rb = started({
        mapFd: dp.ringFd,
        size: RING_SIZE,
        onRecord: (buf, off) => {
          seen.push(puntMeta.capLen(buf, off));
          if (seen.length === 2) {
            rb!.close();
            resolveClosed();
          }
        },
        onError: (err) => assert.fail(String(err)),
      });
    });
    punt(dp.progFd, 0, 6);
    await closed;
    assert.equal(seen.length, 2);
    const rest = new Collector();
    const next = new RingBufferConsumer(rest.options({ mapFd: dp.ringFd }));
    try {
      assert.equal(next.consume(), 4);
      assert.deepEqual(rest.punts.map((p) => p.seq), [2, 3, 4, 5]);
    } finally {
      next.close();
    }
  });
});
