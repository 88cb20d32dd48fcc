// Replication: sync modes, target selection, the on-demand batcher, the
// periodic differential pass and re-replication after membership changes,
// against an in-memory table.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StateEvent } from '../../control/src/bpf/codec.js';
import { bucketOf } from '../../control/src/cluster/bucket.js';
import { ClusterStats } from '../../control/src/cluster/cluster-stats.js';
import { computeOwnership, type Ownership } from '../../control/src/cluster/ownership.js';
import { gainedTargets, replicationTargets, Replicator } from '../../control/src/cluster/replicator.js';
import { SyncModes } from '../../control/src/cluster/sync-modes.js';
import type { SyncPayload } from '../../control/src/cluster/types.js';
import { FlowFlag } from '../../control/src/gen/layout.js';
import { createLogger } from '../../control/src/log.js';
import { entry, keyBytes, MemoryTable, tcpKey } from './cluster-memory-table.js';
import { plain, type PlainRecord } from './flow-records-fixture.js';

const log = createLogger('error');
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const bucketOfKey = (n: number): number => bucketOf(keyBytes(tcpKey(n)), 0);

/** The first `count` key numbers whose bucket `pick` accepts. */
function keysWhere(pick: (bucket: number) => boolean, count: number, from = 0): number[] {
  const out: number[] = [];
  for (let n = from; out.length < count; n++) if (pick(bucketOfKey(n))) out.push(n);
  return out;
}

function event(n: number, flags: number = FlowFlag.FLOW_F_ORIG_A): StateEvent {
  return { type: 3, oldState: 1, newState: 3, version: 3, tsNs: 0n, key: tcpKey(n), ruleId: 5, flags };
}

interface Sent {
  to: number;
  payload: SyncPayload;
}

function harness(opts: { members?: number[]; modes?: SyncModes; next?: Ownership; nowNs?: () => bigint } = {}) {
  const table = new MemoryTable();
  const sent: Sent[] = [];
  const stats = new ClusterStats();
  let current = computeOwnership(opts.members ?? [1, 2, 3], 'load-sharing', 1);
  const replicator = new Replicator({
    table,
    view: { selfId: 1, current: () => current, next: () => opts.next, livePeers: () => [2, 3] },
    modes: opts.modes ?? new SyncModes({ node: 'combined', common: 'combined' }),
    send: (to, payload) => sent.push({ to, payload }),
    waitForRoom: async () => undefined,
    stats,
    log,
    monotonicNs: opts.nowNs ?? (() => 100_000_000_000n),
    lastSeenGranularityNs: 1_000_000_000n,
    chunk: 64,
    queueCapacity: 16,
  });
  return { table, sent, stats, replicator, ownership: () => current, setOwnership: (o: Ownership) => (current = o) };
}

/** The records of `entries` payloads sent, readable. */
const recordsSent = (sent: Sent[], to?: number): PlainRecord[] =>
  sent.filter((s) => to === undefined || s.to === to).flatMap((s) => (s.payload.kind === 'entries' ? plain(s.payload.entries) : []));

const entriesTo = (sent: Sent[], to: number): string[] => recordsSent(sent, to).map((r) => String(r.key.portA));

test('sync modes: which kinds of sending each mode enables, switchable at run time', () => {
  const modes = new SyncModes({ node: 'combined', common: 'off' });
  assert.deepEqual([modes.onDemand('node'), modes.periodic('node'), modes.enabled('node')], [true, true, true]);
  assert.deepEqual([modes.onDemand('common'), modes.periodic('common'), modes.enabled('common')], [false, false, false]);
  assert.equal(modes.set('node', 'periodic'), 'combined');
  assert.deepEqual([modes.onDemand('node'), modes.periodic('node')], [false, true]);
  modes.set('node', 'on-demand');
  assert.deepEqual([modes.onDemand('node'), modes.periodic('node')], [true, false]);
  assert.equal(modes.get('node'), 'on-demand');
});

test('targets: the bucket group minus this node (plus the next group while draining); common: every live peer', () => {
  const now = computeOwnership([1, 2, 3, 4], 'load-sharing', 1);
  const next = computeOwnership([2, 3, 4], 'load-sharing', 1);
  const b = [...Array(1024).keys()].find((x) => now.owner[x] === 1)!;
  assert.deepEqual(replicationTargets(b, false, 1, [now, undefined], [2, 3, 4], []), now.backups(b));
  const both = replicationTargets(b, false, 1, [now, next], [2, 3, 4], []);
  assert.deepEqual(new Set(both), new Set([...now.backups(b), next.owner[b]!, ...next.backups(b)]));
  assert.deepEqual(replicationTargets(b, true, 1, [now], [2, 3, 4], []), [2, 3, 4]);
});

test('gained targets after a failure: every bucket of the survivors again has k backups', () => {
  const before = computeOwnership([1, 2, 3], 'load-sharing', 1);
  const after = computeOwnership([1, 2], 'load-sharing', 1);
  const gained = gainedTargets(before, after, 1);
  for (let b = 0; b < 1024; b++) {
    const expected = after.owner[b] === 1 && !before.inGroup(b, 2) ? [2] : [];
    // Buckets node 1 neither owned before nor owns now are node 2's to re-replicate.
    assert.deepEqual(gained[b], expected, `bucket ${b}`);
  }
  assert.ok(gained.some((t) => t.length > 0));
});

test('on demand: changes of owned flows go to their backups in one message per peer, on the next tick', async () => {
  const h = harness();
  const mine = keysWhere((b) => h.ownership().owner[b] === 1, 6);
  const theirs = keysWhere((b) => h.ownership().owner[b] !== 1, 2);
  for (const n of [...mine, ...theirs]) h.table.put(tcpKey(n), entry());
  for (const n of [...mine, ...theirs]) h.replicator.stateChanged(event(n));
  assert.equal(h.sent.length, 0, 'batched until the next turn of the event loop');
  await tick();
  for (const peer of [2, 3]) {
    const expected = mine.filter((n) => h.ownership().backups(bucketOfKey(n))[0] === peer).map((n) => String(tcpKey(n).portA));
    assert.deepEqual(entriesTo(h.sent, peer).sort(), expected.sort());
    assert.ok(h.sent.filter((s) => s.to === peer).length <= 1);
  }
  const total = h.stats.get('entries_sent_node_on_demand');
  assert.equal(total, mine.length);
  const first = h.sent[0]!.payload;
  assert.ok(first.kind === 'entries' && first.cls === 'node');
  // the entry as the table holds it, its times made relative to the sender's clock (100 s)
  assert.deepEqual(plain(first.entries)[0]!.entry, entry({ createdNs: 100_000_000_000n, lastSeenNs: 100_000_000_000n }));
});

test('on demand: common flows go to every live peer; removals follow the same routes', async () => {
  const h = harness();
  const [common, plain] = keysWhere((b) => h.ownership().owner[b] === 1, 2) as [number, number];
  h.table.put(tcpKey(common), entry({ flags: FlowFlag.FLOW_F_COMMON }));
  h.replicator.stateChanged(event(common, FlowFlag.FLOW_F_COMMON));
  h.replicator.removed(keyBytes(tcpKey(plain)), 'expired', 0);
  await tick();
  assert.deepEqual(entriesTo(h.sent, 2), [String(tcpKey(common).portA)]);
  assert.deepEqual(entriesTo(h.sent, 3), [String(tcpKey(common).portA)]);
  const removes = h.sent.filter((s) => s.payload.kind === 'removes');
  assert.deepEqual(removes.map((s) => s.to), h.ownership().backups(bucketOfKey(plain)));
  assert.equal(h.stats.get('entries_sent_common_on_demand'), 2);
});

test('on demand: mode off or periodic sends no state changes; a full queue flushes early', async () => {
  const modes = new SyncModes({ node: 'periodic', common: 'off' });
  const h = harness({ modes });
  const mine = keysWhere((b) => h.ownership().owner[b] === 1, 20);
  for (const n of mine) h.table.put(tcpKey(n), entry());
  h.replicator.stateChanged(event(mine[0]!));
  await tick();
  assert.equal(h.sent.length, 0);
  modes.set('node', 'on-demand');
  for (const n of mine) h.replicator.stateChanged(event(n));
  assert.ok(h.sent.length > 0, 'the 17th change flushed the 16 queued ones');
  await tick();
  assert.equal(h.stats.get('entries_sent_node_on_demand'), 20);
});

test('periodic pass: full first, then only entries seen since the previous pass (minus the last-seen granularity)', async () => {
  let now = 100_000_000_000n;
  const h = harness({ nowNs: () => now });
  const mine = keysWhere((b) => h.ownership().owner[b] === 1, 4);
  const other = keysWhere((b) => h.ownership().owner[b] === 2, 1);
  for (const n of [...mine, ...other]) h.table.put(tcpKey(n), entry({ lastSeenNs: 90_000_000_000n }));
  await h.replicator.periodicPass();
  assert.equal(h.stats.get('entries_sent_node_periodic'), 4);
  h.sent.length = 0;
  now = 110_000_000_000n;
  h.table.put(tcpKey(mine[0]!), entry({ lastSeenNs: 105_000_000_000n }));
  h.table.put(tcpKey(mine[1]!), entry({ lastSeenNs: 99_500_000_000n })); // within the granularity before the previous pass
  await h.replicator.periodicPass();
  assert.deepEqual(recordsSent(h.sent).map((r) => r.key.portA).sort(),
    [tcpKey(mine[0]!).portA, tcpKey(mine[1]!).portA].sort());
  assert.equal(h.stats.get('periodic_passes'), 2);
});

test('periodic pass: nothing in on-demand or off mode; a class switched back on gets a full pass', async () => {
  const modes = new SyncModes({ node: 'on-demand', common: 'off' });
  const h = harness({ modes });
  const mine = keysWhere((b) => h.ownership().owner[b] === 1, 3);
  for (const n of mine) h.table.put(tcpKey(n), entry({ lastSeenNs: 1n }));
  await h.replicator.periodicPass();
  assert.equal(h.sent.length, 0);
  assert.equal(h.stats.get('periodic_passes'), 0);
  modes.set('node', 'periodic');
  await h.replicator.periodicPass();
  assert.equal(h.stats.get('entries_sent_node_periodic'), 3);
});

test('re-replication after a failure sends each bucket to the backup it gained, skipping common state', async () => {
  const h = harness();
  const before = h.ownership();
  const after = computeOwnership([1, 2], 'load-sharing', 1);
  const gained = gainedTargets(before, after, 1);
  const moving = keysWhere((b) => gained[b]!.length > 0, 5);
  const staying = keysWhere((b) => gained[b]!.length === 0, 5);
  for (const n of [...moving, ...staying]) h.table.put(tcpKey(n), entry({ lastSeenNs: 5n }));
  const [common] = keysWhere((b) => gained[b]!.length > 0, 1, moving.at(-1)! + 1) as [number];
  h.table.put(tcpKey(common), entry({ flags: FlowFlag.FLOW_F_COMMON }));
  h.setOwnership(after);
  const lastSeq = await h.replicator.rereplicate(before, after);
  assert.deepEqual(entriesTo(h.sent, 2).sort(), moving.map((n) => String(tcpKey(n).portA)).sort());
  assert.deepEqual([...lastSeq.keys()], [2]);
  assert.equal(h.stats.get('entries_rereplicated'), 5);
});

test('re-replication to a node that just received a join bulk sends only what changed since', async () => {
  const h = harness({ members: [1, 2] });
  const before = h.ownership();
  const after = computeOwnership([1, 2, 3], 'load-sharing', 1);
  const gained = gainedTargets(before, after, 1);
  const [old, fresh] = keysWhere((b) => gained[b]!.includes(3), 2) as [number, number];
  h.table.put(tcpKey(old), entry({ lastSeenNs: 10_000_000_000n }));
  h.table.put(tcpKey(fresh), entry({ lastSeenNs: 50_000_000_000n }));
  await h.replicator.rereplicate(before, after, new Map([[3, 40_000_000_000n]]));
  assert.deepEqual(entriesTo(h.sent, 3), [String(tcpKey(fresh).portA)]);
});
