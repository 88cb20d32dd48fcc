// Item 4 through a 2-node cluster with state sync on: short TCP connections
// per second from the client, through the cluster, to the server, for
//   - plain: Linux forwarding on the active node, no rules;
//   - nftables+ct: the same with the conntrack ruleset on both nodes;
//   - nftables+ct+conntrackd: the same with conntrackd in FTFW mode on both
//     nodes, replicating the active node's states to the other over the
//     dedicated sync link (what people run today with keepalived);
//   - syncwall: two syncwalld nodes, load-sharing (k=1, every flow replicated
//     to the other node), sync `combined` (on-demand plus the periodic
//     repair pass), mTLS between them (test/lab/cluster.ts).
// For the peers, the active node holds the cluster addresses in its kernel
// (as keepalived would hold a VIP); syncwall answers for them itself, on the
// cluster MAC. Every repetition measures all four (each repetition starting
// with another one), so drift on a shared machine touches all of them alike;
// ratios are to plain forwarding in the same repetition.
import { ClusterLab } from '../test/lab/cluster.js';
import { CLUSTER, clusterNode } from '../test/lab/topology.js';
import { type ConnLoad, connRun, prepareConnClient, startConnServer } from './conn-rate.js';
import { withLab } from './lib/bench-lab.js';
import { Conntrackd, requireConntrackd } from './lib/conntrackd.js';
import {
  applyNftConntrack, removeNftConntrack, removeSyncwall, SYNCWALL_BENCH_CONFIG, SyncwalldExitError, syncwallBenchRules,
} from './lib/firewalls.js';
import type { Report } from './lib/report.js';

export interface ClusterConnPlan {
  reps: number;
  /**
   * One connection-rate measurement: connections started for durationMs
   * (at most count), concurrency of them in flight. A fixed time rather than
   * a fixed count: a slow configuration and a fast one see the machine's
   * load for equally long.
   */
  rate: Required<ConnLoad>;
  /** Connections, one at a time, for the connect-time percentiles. */
  latencyConns: number;
}

const NODES = [1, 2] as const;
/** The node the peers' traffic goes through (the keepalived master). */
const ACTIVE = 1;

/** Connections before each measurement that are not counted (see measureRep). */
const WARM_UP: ConnLoad = { count: 2000, concurrency: 64, durationMs: 1000 };

type Subject = 'plain' | 'nftables+ct' | 'nftables+ct+conntrackd' | 'syncwall';

interface ClusterConfig {
  readonly name: Subject;
  apply(): Promise<void>;
  remove(): Promise<void>;
}

/** The cluster's IPv4 addresses (the endpoints' gateways), on the active node's outside and inside interfaces. */
function vipArgs(cl: ClusterLab): [dev: string, address: string][] {
  const { dev } = clusterNode(ACTIVE);
  return [
    [cl.lab.dev({ dev: dev.outside }), `${CLUSTER.outside.v4}/24`],
    [cl.lab.dev({ dev: dev.inside }), `${CLUSTER.inside.v4}/24`],
  ];
}

async function setVip(cl: ClusterLab, action: 'add' | 'del'): Promise<void> {
  for (const [dev, address] of vipArgs(cl)) await cl.lab.execChecked(clusterNode(ACTIVE).host, ['ip', 'addr', action, address, 'dev', dev]);
}

/**
 * The endpoints resolve their gateway again: it is the active node's MAC for
 * the peers and the cluster MAC for syncwall.
 */
async function flushNeighbours(cl: ClusterLab): Promise<void> {
  for (const host of ['cli', 'srv']) await cl.lab.execChecked(host, ['ip', 'neigh', 'flush', 'all']);
}

/** A node's own addresses: traffic to them is local, never replicated. */
function ownAddresses(id: number): string[] {
  const n = clusterNode(id);
  return [n.outside.v4, n.inside.v4, CLUSTER.outside.v4, CLUSTER.inside.v4];
}

function startConntrackd(cl: ClusterLab, id: number): Promise<Conntrackd> {
  const n = clusterNode(id);
  const peer = NODES.find((p) => p !== id)!;
  return Conntrackd.start(cl.lab, {
    host: n.host,
    link: { dev: cl.lab.dev({ dev: n.dev.sync }), local: n.sync, peer: clusterNode(peer).sync },
    ignoreAddresses: ownAddresses(id),
  });
}

function configurations(cl: ClusterLab): ClusterConfig[] {
  const nftOnNodes = async (on: boolean): Promise<void> => {
    for (const id of NODES) {
      const host = clusterNode(id).host;
      await (on ? applyNftConntrack(cl.lab, host, CLUSTER.server.v4) : removeNftConntrack(cl.lab, host));
    }
  };
  let daemons: Conntrackd[] = [];
  return [
    { name: 'plain', apply: () => setVip(cl, 'add'), remove: () => setVip(cl, 'del') },
    {
      name: 'nftables+ct',
      apply: async () => {
        await setVip(cl, 'add');
        await nftOnNodes(true);
      },
      remove: async () => {
        await nftOnNodes(false);
        await setVip(cl, 'del');
      },
    },
    {
      name: 'nftables+ct+conntrackd',
      apply: async () => {
        await setVip(cl, 'add');
        await nftOnNodes(true);
        for (const id of NODES) daemons.push(await startConntrackd(cl, id));
      },
      remove: async () => {
        await Promise.all(daemons.map((d) => d.stop()));
        daemons = [];
        await nftOnNodes(false);
        await setVip(cl, 'del');
      },
    },
    {
      name: 'syncwall',
      apply: () => cl.start(NODES, { mode: 'load-sharing', backups: 1 }),
      remove: async () => {
        // One after the other: the first one drains its flows to the second,
        // which then leaves alone. A bad exit of one still removes the other.
        const badExits: string[] = [];
        for (const id of [...NODES].reverse()) {
          await removeSyncwall(cl.lab, cl.daemon(id)).catch((err: unknown) => {
            if (!(err instanceof SyncwalldExitError)) throw err;
            badExits.push(err.message);
          });
        }
        if (badExits.length > 0) throw new SyncwalldExitError(badExits.join('\n'));
      },
    },
  ];
}

interface Figures {
  rate: number[];
  connectP50: number[];
  connectP99: number[];
}

type Raw = Map<Subject, Figures>;

/**
 * One repetition: every configuration once. Repetition `rep` starts with
 * configuration `rep` (mod 4), so none is always the one measured first,
 * just after syncwalld was stopped and detached, or last.
 */
async function measureRep(cl: ClusterLab, rep: number, plan: ClusterConnPlan, raw: Raw, report: Report, log: (line: string) => void): Promise<void> {
  const all = configurations(cl);
  const first = rep % all.length;
  for (const config of [...all.slice(first), ...all.slice(0, first)]) {
    // One configuration failing (a daemon that does not start) must not
    // cost the others' figures: it is reported and the run goes on.
    try {
      await config.apply();
    } catch (err) {
      report.problem(`cluster ${config.name}`, err);
      log(cl.diagnostics());
      await config.remove().catch(() => {});
      continue;
    }
    try {
      await flushNeighbours(cl);
      // Not counted: resolves the gateway again and lets a just-started
      // syncwalld's JIT warm up (a daemon in service has long been running).
      await connRun(cl.lab, CLUSTER.server.v4, WARM_UP);
      const rate = await connRun(cl.lab, CLUSTER.server.v4, plan.rate);
      const latency = await connRun(cl.lab, CLUSTER.server.v4, { count: plan.latencyConns, concurrency: 1 });
      const figures = raw.get(config.name) ?? { rate: [], connectP50: [], connectP99: [] };
      raw.set(config.name, figures);
      figures.rate.push(rate.rate);
      figures.connectP50.push(latency.connectP50Us);
      figures.connectP99.push(latency.connectP99Us);
      log(`  ${config.name}: ${Math.round(rate.rate)} conn/s (${rate.failed} failed), connect p99 ${latency.connectP99Us} µs`);
    } catch (err) {
      report.problem(`cluster ${config.name}`, err);
      log(cl.diagnostics());
    } finally {
      // A daemon that exits badly when stopped is reported; its figures of
      // this repetition stand (they were measured before) and the host is clean.
      await config.remove().catch((err: unknown) => {
        if (!(err instanceof SyncwalldExitError)) throw err;
        report.problem(`cluster ${config.name} stop`, err);
        log(err.message);
      });
    }
  }
}

const SUBJECTS: readonly Subject[] = ['plain', 'nftables+ct', 'nftables+ct+conntrackd', 'syncwall'];

const NOTES: Partial<Record<Subject, string>> = {
  plain: 'the peers forward through one node holding the cluster addresses (a keepalived VIP); conntrackd FTFW replicates to the other node',
  syncwall:
    'load-sharing, k=1, sync combined (on-demand + periodic), mTLS, default heartbeat/failure timeout (100/400 ms); XDP in generic mode on the cluster MAC (test/lab/cluster.ts), native in the one-node rows',
};

function addFigures(report: Report, raw: Raw): void {
  const section = '4 conn rate';
  const measurements = [
    { name: 'short TCP connections, 2-node cluster', unit: 'conn/s', better: 'higher', reps: (f: Figures) => f.rate },
    { name: 'connect time p50, 2-node cluster', unit: 'µs', better: 'lower', reps: (f: Figures) => f.connectP50 },
    { name: 'connect time p99, 2-node cluster', unit: 'µs', better: 'lower', reps: (f: Figures) => f.connectP99 },
  ] as const;
  for (const m of measurements) {
    for (const subject of SUBJECTS) {
      const reps = m.reps(raw.get(subject) ?? { rate: [], connectP50: [], connectP99: [] });
      const rate = m.unit === 'conn/s';
      report.add({
        section, name: m.name, subject, unit: m.unit, better: m.better, reps,
        ...(subject === 'plain' ? {} : { peer: 'plain' }),
        ...(rate && subject === 'syncwall' ? { target: { op: '>=', value: 0.9 } as const } : {}),
        ...(rate && NOTES[subject] ? { note: NOTES[subject] } : {}),
      });
    }
  }
}

/** Runs the cluster connection-rate measurements, adding figures to the report; the lab is always removed. */
export async function clusterConnRate(report: Report, plan: ClusterConnPlan, log: (line: string) => void): Promise<void> {
  await requireConntrackd();
  const raw: Raw = new Map();
  try {
    const cluster = await ClusterLab.create({ nodes: NODES.length, rules: syncwallBenchRules(CLUSTER.server.v4), config: SYNCWALL_BENCH_CONFIG });
    await withLab(cluster, log, async (cl) => {
      await startConnServer(cl.lab);
      await prepareConnClient(cl.lab);
      for (let rep = 0; rep < plan.reps; rep++) {
        log(`cluster lab ${cl.lab.prefix}: repetition ${rep + 1} of ${plan.reps}`);
        await measureRep(cl, rep, plan, raw, report, log);
      }
    });
  } finally {
    addFigures(report, raw);
  }
}
