// Trigger e with a fake clock: a held packet is re-injected once a peer
// answers with the flow, dropped when nobody has it or nobody answers in
// time; the bucket's group is asked first, everyone else after.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flowKey } from '../../control/src/bpf/codec.js';
import { bucketOf } from '../../control/src/cluster/bucket.js';
import { ClusterStats } from '../../control/src/cluster/cluster-stats.js';
import { FlowFetcher, type FetchClock } from '../../control/src/cluster/flow-fetch.js';
import { computeOwnership } from '../../control/src/cluster/ownership.js';
import type { FlowRecords } from '../../control/src/cluster/flow-records.js';
import type { SyncPayload } from '../../control/src/cluster/types.js';
import { EventType, PuntMetaLayout, PuntSmallLayout } from '../../control/src/gen/layout.js';
import { createLogger } from '../../control/src/log.js';
import { entry, keyBytes, tcpKey } from './cluster-memory-table.js';
import { plain, recordsOf } from './flow-records-fixture.js';

class FakeClock implements FetchClock {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  advance(ms: number): void {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.clearTimeout(due.id);
      due.fn();
    }
  }
}

const DATA = PuntSmallLayout.fields.data.offset;

/** An EV_FLOW_MISS record for flow n carrying `payload` as its frame. */
function missRecord(n: number, payload: number[], ifindex = 7): Uint8Array {
  const f = PuntMetaLayout.fields;
  const buf = new Uint8Array(DATA + payload.length);
  const view = new DataView(buf.buffer);
  view.setUint16(f.type.offset, EventType.EV_FLOW_MISS, true);
  view.setUint32(f.ifindex.offset, ifindex, true);
  view.setUint16(f.cap_len.offset, payload.length, true);
  flowKey.write(buf, f.key.offset, tcpKey(n));
  buf.set(payload, DATA);
  return buf;
}

/** A peer's bulk answer holding flows ns. */
function answer(...ns: number[]): FlowRecords {
  return recordsOf(ns.map((n) => ({ key: tcpKey(n), entry: entry({ ownerNode: 2, version: 4 + n }) })));
}

const none = (): FlowRecords => answer();

function harness(maxHeld = 8) {
  const clock = new FakeClock();
  const stats = new ClusterStats();
  const sent: { to: number; payload: SyncPayload }[] = [];
  const installed: ReturnType<typeof plain> = [];
  const reinjected: { frame: number[]; ifindex: number }[] = [];
  const ownership = computeOwnership([1, 2, 3, 4], 'load-sharing', 1);
  let ids = 0;
  const fetcher = new FlowFetcher({
    selfId: 1,
    current: () => ownership,
    livePeers: () => [2, 3, 4],
    send: (to, payload) => sent.push({ to, payload }),
    nextRequestId: () => ++ids,
    install: (records) => installed.push(...plain(records)),
    reinject: (frame, ifindex) => reinjected.push({ frame: [...frame], ifindex }),
    stats,
    log: createLogger('error'),
    clock,
    maxHeld,
    holdMs: 50,
    escalateMs: 10,
  });
  return { clock, stats, sent, installed, reinjected, fetcher, ownership };
}

const requestsTo = (sent: { to: number; payload: SyncPayload }[]) =>
  sent.flatMap((s) => (s.payload.kind === 'request' ? [{ to: s.to, id: s.payload.requestId, ports: (s.payload.flows ?? []).map((k) => k.portA) }] : []));

/** A flow whose bucket this node's ownership backs up on one peer (the one asked first). */
function flowBackedBy(h: ReturnType<typeof harness>): { n: number; backup: number } {
  for (let n = 0; ; n++) {
    const b = bucketOf(keyBytes(tcpKey(n)), 0);
    if (h.ownership.owner[b] === 1) return { n, backup: h.ownership.backups(b)[0]! };
  }
}

test('held packets of one flow are re-injected, in order, once the backup answers with the entry', () => {
  const h = harness();
  const { n, backup } = flowBackedBy(h);
  h.fetcher.onMiss(missRecord(n, [1, 2, 3]), 0);
  h.fetcher.onMiss(missRecord(n, [4, 5]), 0);
  h.fetcher.flush();
  const [req] = requestsTo(h.sent);
  assert.deepEqual(req && { to: req.to, ports: req.ports }, { to: backup, ports: [tcpKey(n).portA] }, 'one request, to the backup');
  assert.equal(h.fetcher.heldCount, 2);
  assert.equal(h.fetcher.onBulk(backup, req!.id, answer(n + 1, n), true), true);
  assert.deepEqual(h.installed, plain(answer(n)), 'only the held flow is installed, as sent');
  assert.deepEqual(h.reinjected, [{ frame: [1, 2, 3], ifindex: 7 }, { frame: [4, 5], ifindex: 7 }]);
  assert.equal(h.fetcher.heldCount, 0);
  assert.equal(h.stats.get('fetch_ok'), 1);
  h.clock.advance(100);
  assert.equal(h.stats.get('fetch_timeout'), 0, 'timers were cancelled');
});

test('when the backup has nothing, everybody else is asked; the first answer wins', () => {
  const h = harness();
  const { n, backup } = flowBackedBy(h);
  h.fetcher.onMiss(missRecord(n, [9]), 0);
  h.fetcher.flush();
  const [first] = requestsTo(h.sent);
  h.fetcher.onBulk(backup, first!.id, none(), true);
  const escalated = requestsTo(h.sent).slice(1);
  assert.deepEqual(escalated.map((r) => r.to).sort(), [2, 3, 4].filter((p) => p !== backup));
  h.fetcher.onBulk(escalated[0]!.to, escalated[0]!.id, answer(n), true);
  h.fetcher.onBulk(escalated[1]!.to, escalated[1]!.id, answer(n), true);
  assert.equal(h.installed.length, 1);
  assert.equal(h.reinjected.length, 1);
});

test('a silent backup is bypassed after the escalation delay', () => {
  const h = harness();
  const { n, backup } = flowBackedBy(h);
  h.fetcher.onMiss(missRecord(n, [9]), 0);
  h.fetcher.flush();
  h.clock.advance(10);
  assert.deepEqual(requestsTo(h.sent).map((r) => r.to).sort(), [2, 3, 4]);
  const later = requestsTo(h.sent).find((r) => r.to !== backup)!;
  h.fetcher.onBulk(later.to, later.id, answer(n), true);
  assert.equal(h.stats.get('fetch_ok'), 1);
});

test('nobody has the flow: dropped as not found; nobody answers: dropped at the hold time', () => {
  const h = harness();
  const { n } = flowBackedBy(h);
  h.fetcher.onMiss(missRecord(n, [9]), 0);
  h.fetcher.flush();
  h.clock.advance(10);
  for (const r of requestsTo(h.sent)) h.fetcher.onBulk(r.to, r.id, none(), true);
  assert.equal(h.stats.get('fetch_not_found'), 1);
  assert.equal(h.stats.get('fetch_frames_dropped'), 1);

  h.fetcher.onMiss(missRecord(n + 1, [9]), 0);
  h.fetcher.onMiss(missRecord(n + 1, [8]), 0);
  h.fetcher.flush();
  h.clock.advance(49);
  assert.equal(h.fetcher.heldCount, 2);
  h.clock.advance(1);
  assert.equal(h.fetcher.heldCount, 0);
  assert.equal(h.stats.get('fetch_timeout'), 1);
  assert.equal(h.stats.get('fetch_frames_dropped'), 3);
  assert.equal(h.reinjected.length, 0);
});

test('the number of held packets is bounded; answers to unknown requests are not ours', () => {
  const h = harness(2);
  h.fetcher.onMiss(missRecord(1, [1]), 0);
  h.fetcher.onMiss(missRecord(2, [2]), 0);
  h.fetcher.onMiss(missRecord(3, [3]), 0);
  assert.equal(h.fetcher.heldCount, 2);
  assert.equal(h.stats.get('fetch_held_full'), 1);
  assert.equal(h.fetcher.onBulk(2, 999, none(), true), false);
});
