// Item 6: on-demand sync. Two cluster nodes in this process, each with its
// own loaded data plane (real BPF maps) and the real mTLS transport on
// loopback. Flows are established on their owner the way the data plane
// leaves them (entry written, state event fed to the controller); the time
// from the state event to the entry being in the backup's map is measured
// for spaced flows and for a burst, with the sync's CPU per entry and bytes
// on the wire. The data plane's part (writing the owner's entries, building
// the state events the ring consumer would decode) is done before the clock
// starts, so CPU per entry is the sync's alone: queueing, reading the
// owner's map, encoding, TLS and gRPC both ways, decoding, the backup's map.
// Both nodes share one event loop and the machine's two cores, so latencies
// include the receiver's turn; it is a lower bound on cost, not a lab run.
//
//   node --import tsx bench/sync-latency.ts [--burst N] [--spaced N] [--json] [--profile FILE]
//
// --profile writes a CPU profile of the burst (a node:inspector session
// opened after the BPF objects are loaded: --cpu-prof breaks their loading).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey, type FlowKey, type StateEvent } from '../control/src/bpf/codec.js';
import { ConnTable } from '../control/src/bpf/conn-table.js';
import { bucketOf } from '../control/src/cluster/bucket.js';
import { caFiles, createClusterCa, createNodeCert, nodeFiles } from '../control/src/cluster/certs.js';
import { ClusterNode } from '../control/src/cluster/cluster-node.js';
import { computeOwnership } from '../control/src/cluster/ownership.js';
import { monotonicNs } from '../control/src/engine/engine.js';
import { FlowEventFeed } from '../control/src/engine/flow-events.js';
import { EventType, FlowFlag, FlowKeyLayout, MapName, TcpWindowFlag } from '../control/src/gen/layout.js';
import { createLogger } from '../control/src/log.js';
import { LatencyHistogram } from '../control/src/stats/latency-histogram.js';
import { TestDataplane } from '../test/bpf/harness.js';

const { values } = parseArgs({
  options: { burst: { type: 'string', default: '10000' }, spaced: { type: 'string', default: '200' }, json: { type: 'boolean', default: false }, profile: { type: 'string' } },
});
const BURST = Number(values.burst);
const SPACED = Number(values.spaced);
/** Flow n is told apart by the last two bytes of its address A (see flow()). */
const MAX_FLOWS = 1 << 16;
if (!(BURST > 0 && SPACED > 0 && BURST + SPACED <= MAX_FLOWS)) throw new Error(`--burst ${BURST} --spaced ${SPACED}: need positive counts, at most ${MAX_FLOWS} flows`);
const SPACING_MS = 5;
const CLUSTER = 'syncbench';
const BASE_PORT = 40000 + Math.floor(Math.random() * 10000);
const log = createLogger('silent');

interface BenchNode {
  id: number;
  dp: TestDataplane;
  table: ConnTable;
  events: FlowEventFeed;
  node: ClusterNode;
}

const dir = mkdtempSync(join(tmpdir(), 'syncwall-syncbench-'));
const nodes: BenchNode[] = [];
/** When flow n's state event reached its owner's controller (performance.now() ms; 0: not yet). */
const createdAt = new Float64Array(MAX_FLOWS);
let arrivals: LatencyHistogram | undefined;
/** performance.now() of the latest arrival. */
let lastArrival = 0;
const FLOW_INDEX_AT = FlowKeyLayout.fields.addr_a.offset + 2;

const flowIndex = (keys: Uint8Array, off: number): number => (keys[off + FLOW_INDEX_AT]! << 8) | keys[off + FLOW_INDEX_AT + 1]!;

function startNode(id: number): BenchNode {
  const dp = TestDataplane.load({ connEntries: 4 * (BURST + SPACED) });
  const table = new ConnTable(dp.obj.mapFd(MapName.sw_conns), 1024);
  // The backup's map write is the arrival: time every key it upserts.
  const upsert = table.upsertBatch.bind(table);
  table.upsertBatch = (keys, values, count) => {
    upsert(keys, values, count);
    if (!arrivals) return;
    const now = performance.now();
    lastArrival = now;
    for (let i = 0; i < count; i++) {
      const t0 = createdAt[flowIndex(keys, i * FLOW_KEY_SIZE)]!;
      if (t0 !== 0) arrivals.record((now - t0) * 1000);
    }
  };
  const events = new FlowEventFeed();
  const node = new ClusterNode({
    config: {
      id: CLUSTER,
      nodeId: id,
      mode: 'load-sharing',
      backups: 1,
      listen: `127.0.0.1:${BASE_PORT + id}`,
      peers: [1, 2].filter((p) => p !== id).map((p) => ({ id: p, address: `127.0.0.1:${BASE_PORT + p}` })),
      tls: { ca: caFiles(dir).cert, ...nodeFiles(dir, id) },
      mac: '03:53:57:00:00:01',
      addresses: [],
      heartbeatMs: 100,
      failureTimeoutMs: 2000,
      sync: { node: 'on-demand', common: 'on-demand', periodicIntervalMs: 3_600_000 },
    },
    interfaces: [],
    maps: dp.clusterMapFds(),
    table,
    injector: { reinject: () => undefined },
    events,
    log,
    monotonicNs,
    lastSeenGranularityNs: 1_000_000_000n,
    chunk: 1024,
  });
  const n = { id, dp, table, events, node };
  nodes.push(n);
  return n;
}

/** Flow n, its key bytes and the node that owns its bucket with both nodes active. */
function flow(n: number): { key: FlowKey; bytes: Uint8Array } {
  const key: FlowKey = { family: 4, proto: 6, addrA: new Uint8Array([10, 3, (n >> 8) & 255, n & 255]), addrB: new Uint8Array([10, 4, 0, 1]), portA: 1024 + (n % 60000), portB: 443 };
  const bytes = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(bytes, 0, key);
  return { key, bytes };
}

const window = { end: 1000, maxEnd: 66000, maxWin: 65000, maxAck: 500, scale: 7, flags: TcpWindowFlag.TCPW_F_WINDOW_SCALE };

/** Flows written by their owner's data plane, with the state events it reports next. */
interface Established {
  owner: BenchNode;
  index: number;
  event: StateEvent;
}

/**
 * The data plane's part of establishing flows from..to-1 (not timed): each
 * owner's entries written in one batch, the state events built.
 */
function establishFlows(from: number, to: number, ownerOf: (n: number) => BenchNode): Established[] {
  const byOwner = new Map<BenchNode, number[]>();
  for (let n = from; n < to; n++) {
    const owner = ownerOf(n);
    byOwner.set(owner, [...(byOwner.get(owner) ?? []), n]);
  }
  const now = monotonicNs();
  const out: Established[] = [];
  for (const [owner, flows] of byOwner) {
    const keys = new Uint8Array(flows.length * FLOW_KEY_SIZE);
    const entries = new Uint8Array(flows.length * FLOW_ENTRY_SIZE);
    flows.forEach((n, i) => {
      const { key, bytes } = flow(n);
      keys.set(bytes, i * FLOW_KEY_SIZE);
      flowEntry.encode(entries, i * FLOW_ENTRY_SIZE, { state: 3, flags: FlowFlag.FLOW_F_ORIG_A, helper: 0, lastDir: 1, ownerNode: owner.id, ruleId: 1, version: 2, win: [window, window], lastSeenNs: now, packets: [2n, 1n], bytes: [120n, 60n], createdNs: now, origIfindex: 2 });
      out.push({ owner, index: n, event: { type: EventType.EV_STATE, oldState: 2, newState: 3, version: 2, tsNs: now, key, ruleId: 1, flags: FlowFlag.FLOW_F_ORIG_A } });
    });
    owner.table.upsertBatch(keys, entries, flows.length);
  }
  return out.sort((x, y) => x.index - y.index);
}

/** The state event reaches the owner's controller: the clock of this flow starts. */
function report(e: Established): void {
  createdAt[e.index] = performance.now();
  e.owner.events.stateChanged(e.event);
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

try {
  createClusterCa(dir, CLUSTER);
  for (const id of [1, 2]) createNodeCert(dir, id, CLUSTER);
  const a = startNode(1);
  const b = startNode(2);
  await Promise.all([a.node.start(), b.node.start()]);
  const ownership = computeOwnership([1, 2], 'load-sharing', 1);
  const ownerOf = (n: number): BenchNode => (ownership.owner[bucketOf(flow(n).bytes, 0)] === 1 ? a : b);

  arrivals = new LatencyHistogram();
  for (let n = 0; n < SPACED; n++) {
    report(establishFlows(n, n + 1, ownerOf)[0]!);
    await sleep(SPACING_MS);
  }
  await waitFor(() => arrivals!.samples >= SPACED, 10_000, 'spaced flows to arrive');
  const spaced = arrivals;

  const burst = establishFlows(SPACED, SPACED + BURST, ownerOf);
  const profiler = values.profile ? await startProfile() : undefined;
  arrivals = new LatencyHistogram();
  const cpu0 = process.cpuUsage();
  const sent0 = a.node.stats.get('entries_sent_node_on_demand') + b.node.stats.get('entries_sent_node_on_demand');
  const bytes0 = totalBytesSent();
  const t0 = performance.now();
  for (const e of burst) report(e);
  await waitFor(() => arrivals!.samples >= BURST, 60_000, 'the burst to arrive');
  const seconds = (lastArrival - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (profiler) await stopProfile(profiler, values.profile!);
  const sent = a.node.stats.get('entries_sent_node_on_demand') + b.node.stats.get('entries_sent_node_on_demand') - sent0;
  const result = {
    spaced: { flows: SPACED, p50Us: spaced.quantileUs(0.5), p99Us: spaced.quantileUs(0.99) },
    burst: { flows: BURST, p50Us: arrivals.quantileUs(0.5), p99Us: arrivals.quantileUs(0.99), entriesPerSec: BURST / seconds },
    // both nodes' work (send and receive) counted against each replicated entry
    cpuUsPerEntry: (cpu.user + cpu.system) / BURST,
    wireBytesPerEntry: (totalBytesSent() - bytes0) / Math.max(1, sent),
  };
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      `spaced ${SPACED} flows: p50 ${result.spaced.p50Us} µs, p99 ${result.spaced.p99Us} µs\n` +
        `burst ${BURST} flows: p50 ${result.burst.p50Us} µs, p99 ${result.burst.p99Us} µs, ${Math.round(result.burst.entriesPerSec)} entries/s\n` +
        `CPU ${result.cpuUsPerEntry.toFixed(1)} µs per entry (sender + receiver), ${result.wireBytesPerEntry.toFixed(0)} wire bytes per entry\n`,
    );
  }
} finally {
  for (const n of nodes) {
    await n.node.stop();
    n.dp.close();
  }
  rmSync(dir, { recursive: true, force: true });
}

async function startProfile(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return session;
}

async function stopProfile(session: Session, file: string): Promise<void> {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
}

function totalBytesSent(): number {
  return nodes.reduce((sum, n) => sum + Number(n.node.counters()['transport_bytesSent'] ?? 0n), 0);
}
