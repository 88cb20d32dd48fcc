// The cluster with real syncwalld nodes, generated certificates and real
// traffic (docs/CLUSTER.md; issue 3's lab tests). One 4-node lab serves the
// load-sharing tests in order (node 4 is the spare that joins later); 200
// verified TCP streams run through the failure, restart, join and drain
// tests and must all survive. The standby test has a lab of its own.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bucketGroup, pickSourcePort, tcp4Bucket } from './buckets.js';
import { ClusterLab, type NodeOptions } from './cluster.js';
import { sleep, waitFor } from './poll.js';
import { CLUSTER } from './topology.js';
import { fleetSummary, startStreamServer, StreamFleet, VerifiedStream, type FleetConnection } from './traffic.js';

const STREAM_PORT = 9000;
const FLEET_SIZE = 200;
const K = 1;
/** Per-node entry counts may differ this much (relative) from (1+k)/N of the total: 200 flows over random buckets. */
const COUNT_TOLERANCE = 0.25;
/** More than a controller's lease (two failure timeouts, 400 ms each by default): a dead or frozen controller's has lapsed by then. */
const LEASE_LAPSED_MS = 1200;
const TEST_TIMEOUT_MS = 120_000;

const RULES = `accept proto tcp dport ${STREAM_PORT} zone outside comment "streams"
accept proto icmp icmp-type echo-request
accept proto icmpv6 icmp-type echo-request
`;

/** `syncwall status --json`'s cluster section. */
interface ClusterStatus {
  nodeId: number;
  state: string;
  mode: string;
  members: number[];
  bucketsOwned: number;
  bucketsBackedUp: number;
  syncNode: string;
  syncCommon: string;
}

type Counters = Record<string, Record<string, number>>;

/** A test that prints every node's log when it fails. */
function clusterTest(cluster: () => ClusterLab, name: string, fn: () => Promise<void>): void {
  test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`\n${cluster().diagnostics()}\n`);
      throw err;
    }
  });
}

function note(text: string): void {
  process.stdout.write(`# ${text}\n`);
}

async function clusterStatus(cl: ClusterLab, id: number): Promise<ClusterStatus> {
  const status = await cl.json<{ cluster?: ClusterStatus }>(id, ['status']);
  assert.ok(status.cluster, `node ${id} status has a cluster section: ${JSON.stringify(status)}`);
  return status.cluster;
}

function counters(cl: ClusterLab, id: number): Promise<Counters> {
  return cl.json<Counters>(id, ['stats']);
}

function counter(c: Counters, scope: string, name: string): number {
  const v = c[scope]?.[name];
  assert.equal(typeof v, 'number', `${scope}.${name} in ${JSON.stringify(c[scope])}`);
  return v as number;
}

/** Source ports of the client's stream flows a node holds (owned or replica). */
function streamPorts(cl: ClusterLab, id: number): Promise<Set<number>> {
  return cl.clientFlowPorts(id, STREAM_PORT);
}

async function holds(cl: ClusterLab, id: number, sport: number): Promise<boolean> {
  return (await streamPorts(cl, id)).has(sport);
}

/**
 * Waits until every fleet flow sits on exactly 1+k of the running nodes,
 * then checks each node holds about (1+k)/N of them.
 */
async function checkEntryCounts(cl: ClusterLab, fleetPorts: readonly number[]): Promise<void> {
  const nodes = cl.running();
  let perNode = new Map<number, Set<number>>();
  await waitFor(
    async () => {
      perNode = new Map(await Promise.all(nodes.map(async (id) => [id, await streamPorts(cl, id)] as const)));
      return fleetPorts.every((port) => [...perNode.values()].filter((s) => s.has(port)).length === 1 + K);
    },
    { timeoutMs: 20_000, intervalMs: 500, what: `every stream on ${1 + K} nodes` },
  ).catch((err: unknown) => {
    const copies = fleetPorts.map((p) => [...perNode.values()].filter((s) => s.has(p)).length);
    throw new Error(`copies per stream (want ${1 + K}): ${JSON.stringify(histogram(copies))}`, { cause: err });
  });
  const expected = ((1 + K) / nodes.length) * fleetPorts.length;
  const counts = nodes.map((id) => [id, [...perNode.get(id)!].filter((p) => fleetPorts.includes(p)).length] as const);
  note(`N=${nodes.length} k=${K}: stream entries per node ${counts.map(([id, n]) => `node ${id}: ${n}`).join(', ')} (expected ${expected.toFixed(0)} ± ${(COUNT_TOLERANCE * 100).toFixed(0)}%)`);
  for (const [id, n] of counts) {
    assert.ok(Math.abs(n - expected) <= COUNT_TOLERANCE * expected, `node ${id} holds ${n} of ${fleetPorts.length} streams, expected about ${expected.toFixed(0)}`);
  }
}

/** Nodes 1-3 of the load-sharing lab, as the tests after the join and drain see them. */
const THREE = [1, 2, 3];

/** The first source port from `from` whose stream flow node `id` owns among nodes 1-3. */
function ownedBy(id: number, from: number): number {
  return pickSourcePort(CLUSTER.client.v4, CLUSTER.server.v4, STREAM_PORT, from, (b) => bucketGroup(b, THREE, 'load-sharing', K).owner === id);
}

/** The backup (k=1) of a stream flow's bucket among nodes 1-3. */
function backupOf(sport: number): number {
  return bucketGroup(tcp4Bucket(CLUSTER.client.v4, sport, CLUSTER.server.v4, STREAM_PORT), THREE, 'load-sharing', K).backups[0]!;
}

/** Log lines about a peer that say it was refused or its TLS handshake failed (not merely unreachable). */
function refusalLines(log: string, peer: number): string[] {
  const out: string[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { peer?: unknown; msg?: string; reason?: string };
    if (entry.peer !== peer) continue;
    const refused = entry.msg === 'sync peer refused';
    const badHandshake = entry.msg === 'sync dial failed' && !/ECONNREFUSED|No route|unreachable/i.test(entry.reason ?? '');
    if (refused || badHandshake) out.push(`${entry.msg}: ${entry.reason ?? ''}`);
  }
  return out;
}

function histogram(values: readonly number[]): Record<number, number> {
  const h: Record<number, number> = {};
  for (const v of values) h[v] = (h[v] ?? 0) + 1;
  return h;
}

/** Every stream alive and moving after an event; prints the largest gap the event caused. */
async function expectFleetSurvived(fleet: StreamFleet, event: string): Promise<FleetConnection[]> {
  const conns = await fleet.waitAllProgress(60_000);
  const s = fleetSummary(conns);
  const gaps = conns.map((c) => c.maxGapMs).sort((a, b) => a - b);
  note(`${event}: ${s.alive}/${FLEET_SIZE} alive, ${s.failed} failed; stall: largest gap ${s.maxGapMs} ms, median ${gaps[gaps.length >> 1]} ms`);
  assert.equal(s.failed, 0, JSON.stringify(conns.filter((c) => c.failure !== null).slice(0, 5)));
  assert.equal(s.alive, FLEET_SIZE);
  return conns;
}

async function totalOwned(cl: ClusterLab): Promise<Map<number, number>> {
  return new Map(await Promise.all(cl.running().map(async (id) => [id, (await clusterStatus(cl, id)).bucketsOwned] as const)));
}

async function expectOwnershipCovers(cl: ClusterLab): Promise<void> {
  await waitFor(
    async () => {
      const owned = await totalOwned(cl);
      return [...owned.values()].reduce((a, b) => a + b, 0) === 1024 && owned;
    },
    { timeoutMs: 10_000, intervalMs: 200, what: 'the running nodes to own all 1024 buckets between them' },
  );
}

describe('load-sharing cluster', () => {
  let cl: ClusterLab;
  let fleet: StreamFleet;
  let fleetPorts: number[];
  const lab = () => cl;

  before(async () => {
    cl = await ClusterLab.create({ nodes: 4, rules: RULES });
    try {
      await cl.start([1, 2, 3]);
      await startStreamServer(cl.lab, 'srv', STREAM_PORT);
    } catch (err) {
      process.stderr.write(`\n${cl.diagnostics()}\n`);
      throw err;
    }
  });

  after(async () => {
    await cl?.teardown();
  });

  clusterTest(lab, `${FLEET_SIZE} streams spread over all nodes; each node holds about (1+k)/N of them (N=3)`, async () => {
    fleet = await StreamFleet.start(cl.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, FLEET_SIZE);
    assert.equal(fleet.failedToConnect, 0);
    const conns = await fleet.waitAllProgress(30_000);
    fleetPorts = conns.map((c) => c.localPort);
    const owners = histogram(fleetPorts.map((p) => bucketGroup(tcp4Bucket(CLUSTER.client.v4, p, CLUSTER.server.v4, STREAM_PORT), THREE, 'load-sharing', K).owner));
    note(`streams per owner: ${JSON.stringify(owners)}`);
    for (const id of [1, 2, 3]) assert.ok((owners[id] ?? 0) > 0, `node ${id} owns some streams`);
    const owned = await totalOwned(cl);
    note(`buckets owned: ${JSON.stringify(Object.fromEntries(owned))}`);
    for (const id of [1, 2, 3]) assert.ok(owned.get(id)! > 0);
    await checkEntryCounts(cl, fleetPorts);
  });

  clusterTest(lab, 'kill -9 of a node and its interfaces down: every stream survives', async () => {
    await fleet.resetGaps();
    await cl.crash(2);
    await cl.waitGone(2);
    await expectOwnershipCovers(cl);
    await expectFleetSurvived(fleet, 'node 2 killed');
  });

  clusterTest(lab, 'the killed node restarts, requests state and rejoins: none lost', async () => {
    await fleet.resetGaps();
    // Sync first: the data links wait until the node has rejoined, as a
    // machine coming back would.
    await cl.plug(2, 'sync');
    await cl.start([2]);
    await cl.plug(2, 'data');
    await expectOwnershipCovers(cl);
    const stats = await counters(cl, 2);
    assert.ok(counter(stats, 'cluster', 'join_requests_sent') > 0, 'node 2 asked for state');
    assert.ok(counter(stats, 'cluster', 'bulk_entries_received') > 0, 'node 2 received entries in bulk');
    await expectFleetSurvived(fleet, 'node 2 restarted');
    assert.ok((await clusterStatus(cl, 2)).bucketsOwned > 0);
  });

  clusterTest(lab, 'a 4th node joins and takes its share of buckets: none lost', async () => {
    await fleet.resetGaps();
    await cl.start([4]);
    await expectOwnershipCovers(cl);
    const status = await clusterStatus(cl, 4);
    note(`node 4 after joining: ${status.bucketsOwned} buckets owned, ${status.bucketsBackedUp} backed up`);
    assert.ok(status.bucketsOwned > 0);
    await expectFleetSurvived(fleet, 'node 4 joined');
  });

  clusterTest(lab, 'with 4 nodes each holds about (1+k)/N of the streams: nodes drop replicas of buckets they no longer serve', async () => {
    await checkEntryCounts(cl, fleetPorts);
  });

  clusterTest(lab, 'a drained node hands its buckets over: none lost', async () => {
    await fleet.resetGaps();
    const r = await cl.cli(4, ['node', 'drain']);
    assert.equal(r.code, 0, r.stderr);
    await cl.waitGone(4);
    const exit = await cl.daemon(4).stop('SIGTERM', 30_000);
    assert.equal(exit.code, 0, `node 4 after the drain: ${JSON.stringify(exit)}`);
    await expectOwnershipCovers(cl);
    await expectFleetSurvived(fleet, 'node 4 drained');
    const final = await fleet.stop();
    assert.equal(fleetSummary(final).failed, 0);
    note(`the ${FLEET_SIZE} streams verified ${fleetSummary(final).verified} bytes in all`);
  });

  clusterTest(lab, 'trigger e: a new owner without the entry fetches it for a mid-stream packet; the stream survives', async () => {
    // Node 3 is cut off and its buckets go to nodes 1 and 2. With node sync
    // off there, the stream opened meanwhile lives on its owner only, and
    // no re-replication follows when node 3 comes back and takes the bucket:
    // node 3 owns a flow it has never seen.
    await cl.unplug(3, 'all');
    await cl.waitGone(3);
    for (const id of [1, 2]) assert.equal((await cl.cli(id, ['sync', 'mode', 'node', 'off'])).code, 0);
    const sport = ownedBy(3, 22000);
    const stream = await VerifiedStream.start(cl.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, 120, sport);
    try {
      await stream.waitForProgress(5_000, 20_000);
      const before = await counters(cl, 3);
      await cl.plug(3, 'sync');
      await cl.waitConverged();
      assert.equal(await holds(cl, 3, sport), false, 'node 3 owns the bucket but has no entry');
      await cl.plug(3, 'data');
      await stream.waitForProgress(20_000, 30_000);
      const afterFetch = await counters(cl, 3);
      assert.ok(counter(afterFetch, 'cluster', 'fetch_ok') > counter(before, 'cluster', 'fetch_ok'), 'node 3 fetched the flow');
      assert.ok(await holds(cl, 3, sport), 'node 3 installed the fetched entry');
      const outcome = await stream.finish();
      assert.equal(outcome.failure, null);
      assert.equal(outcome.mismatches, 0);
    } finally {
      await stream.proc.stop();
      for (const id of [1, 2]) await cl.cli(id, ['sync', 'mode', 'node', 'combined']);
    }
  });

  clusterTest(lab, 'a run-time sync mode switch takes effect: periodic only, then on-demand again', async () => {
    const sport = ownedBy(1, 23000);
    const backup = backupOf(sport);
    assert.equal((await cl.cli(1, ['sync', 'mode', 'node', 'periodic'])).code, 0);
    try {
      assert.equal((await clusterStatus(cl, 1)).syncNode, 'periodic');
      const before = await counters(cl, 1);
      const stream = await VerifiedStream.start(cl.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, 60, sport);
      await stream.waitForProgress(5_000, 20_000);
      await waitFor(() => holds(cl, backup, sport), { timeoutMs: 15_000, intervalMs: 250, what: `the periodic pass to replicate to node ${backup}` });
      const afterPeriodic = await counters(cl, 1);
      assert.equal(counter(afterPeriodic, 'cluster', 'entries_sent_node_on_demand'), counter(before, 'cluster', 'entries_sent_node_on_demand'), 'nothing sent on demand');
      assert.ok(counter(afterPeriodic, 'cluster', 'entries_sent_node_periodic') > counter(before, 'cluster', 'entries_sent_node_periodic'));
      await stream.finish();
    } finally {
      await cl.cli(1, ['sync', 'mode', 'node', 'combined']);
    }
    assert.equal((await clusterStatus(cl, 1)).syncNode, 'combined');
    const before = await counters(cl, 1);
    const second = await VerifiedStream.start(cl.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, 60, ownedBy(1, sport + 1));
    await second.waitForProgress(5_000, 20_000);
    await second.finish();
    const afterCombined = await counters(cl, 1);
    assert.ok(counter(afterCombined, 'cluster', 'entries_sent_node_on_demand') > counter(before, 'cluster', 'entries_sent_node_on_demand'), 'sent on demand again');
  });

  clusterTest(lab, 'the periodic pass heals a dropped update', async () => {
    const sport = ownedBy(1, 24000);
    const backup = backupOf(sport);
    // The owner sends nothing while the connection opens: its update is dropped.
    assert.equal((await cl.cli(1, ['sync', 'mode', 'node', 'off'])).code, 0);
    const stream = await VerifiedStream.start(cl.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, 60, sport);
    try {
      await stream.waitForProgress(5_000, 20_000);
      await sleep(2 * 2000);
      assert.equal(await holds(cl, backup, sport), false, `node ${backup} never got the update`);
      assert.equal((await cl.cli(1, ['sync', 'mode', 'node', 'combined'])).code, 0);
      await waitFor(() => holds(cl, backup, sport), { timeoutMs: 15_000, intervalMs: 250, what: `the periodic pass to bring the replica to node ${backup}` });
      assert.equal((await stream.finish()).failure, null);
    } finally {
      await stream.proc.stop();
      await cl.cli(1, ['sync', 'mode', 'node', 'combined']);
    }
  });

  clusterTest(lab, 'a peer with a certificate from another CA, and one claiming another node id, are refused', async () => {
    // Node 4 alone would own every bucket: it stays off the data segments.
    await cl.unplug(4, 'data');
    const attempts: [string, NodeOptions][] = [
      ['another CA', { certs: 'foreign' }],
      ['the certificate of node 2', { certId: 2 }],
    ];
    for (const [what, opts] of attempts) {
      const before = await Promise.all([1, 2, 3].map((id) => counters(cl, id)));
      const logStart = [1, 2, 3].map((id) => cl.daemon(id).log().length);
      const daemon = cl.daemon(4, opts, true);
      await daemon.start();
      try {
        await sleep(2000);
        for (const id of [1, 2, 3]) {
          const peer = (await cl.peers(id)).find((p) => p.id === 4);
          assert.ok(peer && !peer.connected && peer.state !== 'active', `node ${id} refused node 4 with ${what}: ${JSON.stringify(peer)}`);
        }
        const after = await Promise.all([1, 2, 3].map((id) => counters(cl, id)));
        const refused = [0, 1, 2].reduce((sum, i) => sum + counter(after[i]!, 'cluster', 'transport_peersRefused') - counter(before[i]!, 'cluster', 'transport_peersRefused'), 0);
        const failedDials = [0, 1, 2].reduce((sum, i) => sum + counter(after[i]!, 'cluster', 'transport_dialFailures') - counter(before[i]!, 'cluster', 'transport_dialFailures'), 0);
        // Failed dials alone could mean node 4 is not listening: the log says why.
        const refusals = [1, 2, 3].flatMap((id, i) => refusalLines(cl.daemon(id).log().slice(logStart[i]), 4));
        note(`node 4 with ${what}: refused ${refused}, failed dials ${failedDials}; logged: ${refusals[0] ?? 'nothing'}`);
        assert.ok(refused + failedDials > 0);
        assert.ok(refusals.length > 0, 'a node logged why it refused node 4');
      } finally {
        await daemon.stop('SIGKILL');
      }
    }
  });

  clusterTest(lab, 'a controller frozen past the failure timeout: its peers serve its buckets a while, hand them back, and its streams go on', async () => {
    const sport = ownedBy(1, 26000);
    const stream = await VerifiedStream.start(cl.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, 60, sport);
    try {
      await stream.waitForProgress(5_000, 20_000);
      const before = await counters(cl, 1);
      cl.daemon(1).pause(true);
      const frozenAt = Date.now();
      try {
        await cl.waitGone(1);
        // the stream runs through node 1's backup meanwhile; node 1's own entry falls behind
        await stream.waitForProgress(5_000, 20_000);
        await sleep(Math.max(0, frozenAt + LEASE_LAPSED_MS - Date.now()));
      } finally {
        cl.daemon(1).pause(false);
      }
      await waitFor(async () => (await cl.peers(2)).find((p) => p.id === 1)?.state === 'active', { timeoutMs: 15_000, intervalMs: 200, what: 'node 1 to be active again' });
      await expectOwnershipCovers(cl);
      await stream.waitForProgress(20_000, 30_000);
      const after = await counters(cl, 1);
      assert.ok(counter(after, 'cluster', 'lease_lapses') > counter(before, 'cluster', 'lease_lapses'), "node 1's lease lapsed while it was frozen");
      const outcome = await stream.finish();
      assert.equal(outcome.failure, null);
      assert.equal(outcome.mismatches, 0);
    } finally {
      await stream.proc.stop();
    }
  });

  clusterTest(lab, 'kill -9 of a daemon whose host stays up: once its lease lapses its XDP program stops serving the buckets the peers took over', async () => {
    const sport = ownedBy(2, 25000);
    const stream = await VerifiedStream.start(cl.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, 60, sport);
    try {
      await stream.waitForProgress(5_000, 20_000);
      // Links stay up: the killed daemon's program stays attached through its pinned links.
      await cl.daemon(2).stop('SIGKILL');
      await cl.waitGone(2);
      await expectOwnershipCovers(cl);
      // the lease runs two failure timeouts from the last renewal
      await sleep(LEASE_LAPSED_MS);
      const before = cl.pinnedCounters(2);
      await stream.waitForProgress(20_000, 30_000);
      const after = cl.pinnedCounters(2);
      const forwarded = (c: Record<string, bigint>): bigint => c.fwd_fast! + c.fwd_stack! + c.hit!;
      note(`node 2 after the kill: dropped without controller ${after.drop_no_controller! - before.drop_no_controller!}, forwarded ${forwarded(after) - forwarded(before)}`);
      assert.equal(forwarded(after), forwarded(before), 'the dead node forwarded nothing while its peers served the stream');
      assert.ok(after.drop_no_controller! > before.drop_no_controller!, 'it saw the stream and dropped it for want of a controller');
      const outcome = await stream.finish();
      assert.equal(outcome.failure, null);
      assert.equal(outcome.mismatches, 0);
    } finally {
      await stream.proc.stop();
    }
  });
});

describe('standby cluster', () => {
  let cl: ClusterLab;
  const lab = () => cl;

  before(async () => {
    cl = await ClusterLab.create({ nodes: 3, rules: RULES });
    try {
      await cl.start([1, 2, 3], { mode: 'standby' });
      await startStreamServer(cl.lab, 'srv', STREAM_PORT);
    } catch (err) {
      process.stderr.write(`\n${cl.diagnostics()}\n`);
      throw err;
    }
  });

  after(async () => {
    await cl?.teardown();
  });

  clusterTest(lab, 'standby: one node owns every bucket; killing it moves them all and no stream is lost', async () => {
    const owned = await totalOwned(cl);
    assert.deepEqual(Object.fromEntries(owned), { 1: 1024, 2: 0, 3: 0 });
    const fleet = await StreamFleet.start(cl.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, FLEET_SIZE);
    assert.equal(fleet.failedToConnect, 0);
    await fleet.waitAllProgress(30_000);
    // k=1: the active node and its one backup hold every stream.
    await waitFor(async () => (await streamPorts(cl, 2)).size >= FLEET_SIZE, { timeoutMs: 20_000, intervalMs: 500, what: 'node 2 to back up every stream' });
    await fleet.resetGaps();
    await cl.crash(1);
    await cl.waitGone(1);
    await waitFor(async () => (await totalOwned(cl)).get(2) === 1024, { timeoutMs: 10_000, intervalMs: 200, what: 'node 2 to own every bucket' });
    assert.equal((await totalOwned(cl)).get(3), 0);
    await expectFleetSurvived(fleet, `standby: active node 1 killed`);
    await fleet.stop();
  });
});
