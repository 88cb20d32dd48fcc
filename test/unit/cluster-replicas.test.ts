// Installing replicas (version rules, owned buckets, replica marking, batch
// writes) and tracking membership.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLOW_ENTRY_SIZE, flowEntry, type FlowEntry } from '../../control/src/bpf/codec.js';
import { bucketOf } from '../../control/src/cluster/bucket.js';
import { ClusterStats } from '../../control/src/cluster/cluster-stats.js';
import { ClockReading, FlowRecords } from '../../control/src/cluster/flow-records.js';
import { Membership } from '../../control/src/cluster/membership.js';
import { ReplicaStore } from '../../control/src/cluster/replica-store.js';
import { FlowFlag, TcpWindowFlag } from '../../control/src/gen/layout.js';
import { entry, keyBytes, MemoryTable, tcpKey } from './cluster-memory-table.js';
import { keysOf, plain } from './flow-records-fixture.js';

const NOW = 1_000_000_000_000n;

/** Flows n as their owner sends them at NOW: created 60 s and last seen 2 s before, unless overridden. */
function records(...flows: (number | [number, Partial<FlowEntry>])[]): FlowRecords {
  const out = new FlowRecords();
  const value = new Uint8Array(FLOW_ENTRY_SIZE);
  for (const f of flows) {
    const [n, overrides] = typeof f === 'number' ? [f, {}] : f;
    flowEntry.encode(value, 0, entry({ createdNs: NOW - 60_000_000_000n, lastSeenNs: NOW - 2_000_000_000n, ...overrides }));
    out.addEntry(keyBytes(tcpKey(n)), 0, value, 0, new ClockReading(NOW));
  }
  return out;
}

function store(owned: (bucket: number) => boolean = () => false) {
  const table = new MemoryTable();
  const stats = new ClusterStats();
  return { table, stats, store: new ReplicaStore({ table, ownsBucket: owned, stats, monotonicNs: () => NOW + 5_000_000_000n, chunk: 1000 }) };
}

test('an entry travels with relative times and installs as a marked replica on the receiver\'s clock', () => {
  const r = records(1);
  const [sent] = plain(r);
  assert.equal(sent!.entry.createdNs, 60_000_000_000n, 'created: how long ago');
  assert.equal(sent!.entry.lastSeenNs, 2_000_000_000n, 'last seen: how long ago');
  assert.deepEqual(sent!.key, tcpKey(1));
  const { table, store: s } = store();
  assert.equal(s.install(r), 1);
  const e = table.get(tcpKey(1))!;
  const original = entry();
  assert.equal(e.flags, original.flags | FlowFlag.FLOW_F_REMOTE);
  for (const w of e.win) assert.equal(w.flags & TcpWindowFlag.TCPW_F_UNTRUSTED, TcpWindowFlag.TCPW_F_UNTRUSTED);
  assert.equal(e.win[0].end, 1000);
  // Times are rebuilt on the receiver's clock (5 s later here).
  assert.equal(e.createdNs, NOW + 5_000_000_000n - 60_000_000_000n);
  assert.equal(e.lastSeenNs, NOW + 5_000_000_000n - 2_000_000_000n);
  assert.equal(e.origIfindex, 0);
  assert.deepEqual([e.packets, e.bytes, e.version, e.state, e.ruleId], [original.packets, original.bytes, original.version, original.state, original.ruleId]);
});

test('times later than the clock reading count as now; times older than the receiver\'s clock clamp to 0', () => {
  const r = records([1, { createdNs: NOW + 7n, lastSeenNs: 0n }]);
  assert.deepEqual([plain(r)[0]!.entry.createdNs, plain(r)[0]!.entry.lastSeenNs], [0n, NOW]);
  const { table, store: s } = store();
  s.install(r);
  const e = table.get(tcpKey(1))!;
  assert.deepEqual([e.createdNs, e.lastSeenNs], [NOW + 5_000_000_000n, 5_000_000_000n]);
  const far = new FlowRecords();
  const value = new Uint8Array(FLOW_ENTRY_SIZE);
  flowEntry.encode(value, 0, entry({ createdNs: 0n, lastSeenNs: 0n }));
  far.addEntry(keyBytes(tcpKey(2)), 0, value, 0, new ClockReading(2n ** 64n - 1n));
  s.install(far);
  assert.deepEqual([table.get(tcpKey(2))!.createdNs, table.get(tcpKey(2))!.lastSeenNs], [0n, 0n]);
});

test('the newer version wins; an equal version only with a fresher last_seen; older ones are ignored', () => {
  const { table, stats, store: s } = store();
  s.install(records([1, { version: 5 }]));
  s.install(records([1, { version: 4, state: 7 }]));
  assert.equal(table.get(tcpKey(1))!.version, 5);
  s.install(records([1, { version: 5, lastSeenNs: NOW - 3_000_000_000n, packets: [1n, 1n] }]));
  assert.equal(table.get(tcpKey(1))!.packets[0], 10n, 'staler copy of the same version ignored');
  s.install(records([1, { version: 5, lastSeenNs: NOW - 100_000_000n, packets: [50n, 40n] }]));
  assert.equal(table.get(tcpKey(1))!.packets[0], 50n, 'fresher copy of the same version taken');
  s.install(records([1, { version: 6, state: 4 }]));
  assert.equal(table.get(tcpKey(1))!.state, 4);
  // Versions are u32 serial numbers: 1 follows 0xffffffff.
  s.install(records([2, { version: 0xffffffff }], [2, { version: 1, state: 8 }]));
  assert.equal(table.get(tcpKey(2))!.state, 8);
  assert.equal(stats.get('replicas_ignored'), 2);
});

test("an owned bucket's entry is never overwritten, but a missing one is filled (join, fetch)", () => {
  const { table, store: s } = store(() => true);
  table.put(tcpKey(1), entry({ version: 1, state: 3 }));
  s.install(records([1, { version: 9, state: 8 }], 2));
  assert.equal(table.get(tcpKey(1))!.state, 3);
  assert.ok(table.get(tcpKey(2)));
});

test('installs are written in batches of the chunk size; removals skip owned buckets', () => {
  const owned = bucketOf(keyBytes(tcpKey(0)), 0);
  const { table, store: s } = store((b) => b === owned);
  assert.equal(s.install(records(...Array.from({ length: 2500 }, (_, i) => i + 1))), 2500);
  assert.equal(table.upserts, 3);
  table.put(tcpKey(0), entry());
  const removed = s.remove(keysOf([tcpKey(0), tcpKey(1), tcpKey(2), tcpKey(99999)]));
  assert.equal(removed, 2);
  assert.ok(table.get(tcpKey(0)), 'owned here: the local entry stays');
  assert.equal(table.get(tcpKey(1)), undefined);
});

test('pruning drops node-specific entries of buckets outside this node\'s groups and keeps common state', async () => {
  const { table, stats, store: s } = store();
  const served = bucketOf(keyBytes(tcpKey(1)), 0);
  const foreign = Array.from({ length: 50 }, (_, i) => tcpKey(i + 2)).filter((k) => bucketOf(keyBytes(k), 0) !== served);
  table.put(tcpKey(1), entry());
  for (const k of foreign) table.put(k, entry());
  const common = foreign.pop()!;
  table.put(common, entry({ flags: FlowFlag.FLOW_F_COMMON }));
  const pruned = await s.pruneOutside((b) => b === served);
  assert.equal(pruned, foreign.length);
  assert.equal(stats.get('replicas_pruned'), foreign.length);
  assert.ok(table.get(tcpKey(1)), 'an entry of a served bucket stays');
  assert.ok(table.get(common), 'common state stays on every node');
  for (const k of foreign) assert.equal(table.get(k), undefined);
});

test('membership: active and draining nodes own buckets until they hand over; joining and failed ones do not', () => {
  const m = new Membership(1, [2, 3, 4]);
  assert.deepEqual(m.members(), []);
  assert.deepEqual(m.membersWithSelf(), [1]);
  assert.equal(m.allPeersHeard(), false);
  assert.equal(m.setSelfState('active'), true);
  assert.deepEqual(m.peerState(2, 'active', 'a'), { membersChanged: true, restarted: false });
  assert.deepEqual(m.peerState(3, 'joining', 'b'), { membersChanged: false, restarted: false });
  m.peerState(4, 'failed', '');
  assert.equal(m.allPeersHeard(), true);
  assert.deepEqual(m.members(), [1, 2]);
  assert.deepEqual(m.livePeers().sort(), [2, 3]);
  assert.deepEqual(m.activePeers(), [2]);
  assert.equal(m.peerState(2, 'draining', 'a').membersChanged, false);
  assert.equal(m.peerHandedOver(2), true);
  assert.deepEqual(m.members(), [1]);
  // A new incarnation is a restart: it owns nothing until it is active again, then it is a member.
  assert.deepEqual(m.peerState(2, 'joining', 'a2'), { membersChanged: false, restarted: true });
  assert.equal(m.peerState(2, 'active', 'a2').membersChanged, true);
  assert.deepEqual(m.members(), [1, 2]);
  assert.equal(m.peerState(2, 'failed', 'a2').membersChanged, true);
  assert.deepEqual(m.membersWithoutSelf(), []);
  assert.equal(m.peerState(9, 'active', 'x').membersChanged, false, 'unknown ids are ignored');
  m.setSelfState('draining');
  assert.deepEqual(m.members(), [1]);
  assert.equal(m.selfHandOver(), true);
  assert.deepEqual(m.members(), []);
});
