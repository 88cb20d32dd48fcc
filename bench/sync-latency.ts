// Item 6: on-demand sync. Two cluster nodes in this process, each with its
// own loaded data plane (real BPF maps) and the real mTLS transport on
// loopback. Flows are established on their owner the way the data plane
// leaves them (entry written, state event fed to the controller); the time
// until the entry is in the backup's map is measured for spaced flows and
// for a burst, with the sync's CPU per entry and bytes on the wire.
// Both nodes share one event loop and the machine's two cores, so latencies
// include the receiver's turn; it is a lower bound on cost, not a lab run.
//
//   node --import tsx bench/sync-latency.ts [--burst N] [--spaced N] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey, type FlowKey } from '../control/src/bpf/codec.js';
import { ConnTable } from '../control/src/bpf/conn-table.js';
import { bucketOf } from '../control/src/cluster/bucket.js';
import { caFiles, createClusterCa, createNodeCert, nodeFiles } from '../control/src/cluster/certs.js';
import { ClusterNode } from '../control/src/cluster/cluster-node.js';
import { computeOwnership } from '../control/src/cluster/ownership.js';
import { monotonicNs } from '../control/src/engine/engine.js';
import { FlowEventFeed } from '../control/src/engine/flow-events.js';
import { EventType, FlowFlag, MapName, TcpWindowFlag } from '../control/src/gen/layout.js';
import { createLogger } from '../control/src/log.js';
import { LatencyHistogram } from '../control/src/stats/latency-histogram.js';
import { TestDataplane } from '../test/bpf/harness.js';

const { values } = parseArgs({
  options: { burst: { type: 'string', default: '10000' }, spaced: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } },
});
const BURST = Number(values.burst);
const SPACED = Number(values.spaced);
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
/** When each flow (by key text) was established on its owner. */
const createdAt = new Map<string, number>();
let arrivals: LatencyHistogram | undefined;

function keyText(buf: Uint8Array, off: number): string {
  return Buffer.from(buf.subarray(off, off + FLOW_KEY_SIZE)).toString('hex');
}

function startNode(id: number): BenchNode {
  const dp = TestDataplane.load({ connEntries: 4 * (BURST + SPACED) });
  const table = new ConnTable(dp.obj.mapFd(MapName.sw_conns), 1024);
  // The backup's map write is the arrival: time every key it upserts.
  const upsert = table.upsertBatch.bind(table);
  table.upsertBatch = (keys, values, count) => {
    upsert(keys, values, count);
    const now = Number(monotonicNs());
    for (let i = 0; i < count; i++) {
      const t0 = createdAt.get(keyText(keys, i * FLOW_KEY_SIZE));
      if (t0 !== undefined && arrivals) arrivals.record((now - t0) / 1000);
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
    maps: { bucketOwnerFd: dp.obj.mapFd(MapName.sw_bucket_owner), clusterAddrsFd: dp.obj.mapFd(MapName.sw_cluster_addrs), ifacesFd: dp.obj.mapFd(MapName.sw_ifaces) },
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

const value = new Uint8Array(FLOW_ENTRY_SIZE);
const window = { end: 1000, maxEnd: 66000, maxWin: 65000, maxAck: 500, scale: 7, flags: TcpWindowFlag.TCPW_F_WINDOW_SCALE };

/** What the data plane does when a flow reaches ESTABLISHED: the entry, then the state event. */
function establish(owner: BenchNode, n: number): void {
  const { key, bytes } = flow(n);
  const now = monotonicNs();
  flowEntry.encode(value, 0, { state: 3, flags: FlowFlag.FLOW_F_ORIG_A, helper: 0, lastDir: 1, ownerNode: owner.id, ruleId: 1, version: 2, win: [window, window], lastSeenNs: now, packets: [2n, 1n], bytes: [120n, 60n], createdNs: now, origIfindex: 2 });
  owner.table.upsertBatch(bytes, value, 1);
  createdAt.set(keyText(bytes, 0), Number(now));
  owner.events.stateChanged({ type: EventType.EV_STATE, oldState: 2, newState: 3, version: 2, tsNs: now, key, ruleId: 1, flags: FlowFlag.FLOW_F_ORIG_A });
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
    establish(ownerOf(n), n);
    await sleep(SPACING_MS);
  }
  await waitFor(() => arrivals!.samples >= SPACED, 10_000, 'spaced flows to arrive');
  const spaced = arrivals;

  arrivals = new LatencyHistogram();
  const cpu0 = process.cpuUsage();
  const sent0 = a.node.stats.get('entries_sent_node_on_demand') + b.node.stats.get('entries_sent_node_on_demand');
  const bytes0 = totalBytesSent();
  const t0 = performance.now();
  for (let n = SPACED; n < SPACED + BURST; n++) establish(ownerOf(n), n);
  await waitFor(() => arrivals!.samples >= BURST, 60_000, 'the burst to arrive');
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
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

function totalBytesSent(): number {
  return nodes.reduce((sum, n) => sum + Number(n.node.counters()['transport_bytesSent'] ?? 0n), 0);
}
