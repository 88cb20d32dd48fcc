// Item 7: failover. Many established TCP connections ping-pong verified
// data every 10 ms through a cluster (test/lab's stream fleet); a node is
// killed with SIGKILL and unplugged in the same step, as the cluster lab
// tests do. Measured per repetition: the share of connections still moving
// data afterwards, and for the connections the killed node carried, the
// largest gap between two echoes (the stall, failure detection included)
// as p50 and max; also the largest gap over an equal quiet time with no
// failure, which is what the loaded machine alone costs.
//
// Subjects, each in a lab of its own, one fleet through all repetitions
// (the killed node comes back as a backup in between):
//   syncwall load-sharing  3 nodes, k=1; the killed node owns a third of the flows
//   syncwall standby       2 nodes; the active node is killed
//   nftables+conntrackd+keepalived
//                          2 nodes with nftables (established only; no
//                          mid-stream pickup), conntrackd FTFW over the sync
//                          link, keepalived VRRP moving the gateway addresses;
//                          its notify script commits conntrackd's external
//                          cache on takeover (primary-backup.sh); the master
//                          is killed
import { rmSync } from 'node:fs';
import { bucketGroup, tcp4Bucket } from '../test/lab/buckets.js';
import { ClusterLab, type ClusterMode } from '../test/lab/cluster.js';
import { createLab, type Lab } from '../test/lab/netns.js';
import { sleep, waitFor } from '../test/lab/poll.js';
import { CLUSTER, clusterNode, clusterTopology } from '../test/lab/topology.js';
import { type FleetConnection, movedSince, progressMark, startStreamServer, StreamFleet } from '../test/lab/traffic.js';
import { Conntrackd, controlArgv, requireConntrackd } from './lib/conntrackd.js';
import { Keepalived, MIN_ADVERT_INTERVAL_S } from './lib/keepalived.js';
import type { Report } from './lib/report.js';
import { median } from './lib/stats.js';

export interface FailoverPlan {
  /** Connections in the fleet. */
  conns: number;
  /** Failovers per subject. */
  reps: number;
}

const STREAM_PORT = 9000;
/** Each connection sends its next chunk this often once the last came back. */
const INTERVAL_MS = 10;
/** A connection that has not moved data this long after the kill counts as lost. */
const LOST_AFTER_MS = 15_000;
/** The quiet window whose largest gap is the no-failure baseline. */
const QUIET_MS = 2000;
const SECTION = '7 failover';
const KEEPALIVED_SUBJECT = 'nftables+conntrackd+keepalived';

/** One failover subject in a lab of its own. */
interface Subject {
  readonly name: string;
  readonly lab: Lab;
  /** Waits until every connection's state is on a node that would take it over. */
  ready(ports: readonly number[]): Promise<void>;
  /** kill -9 and unplug a node; says which connections (by client port) it carried. */
  fail(): Promise<(port: number) => boolean>;
  /** Brings the killed node back as a backup. */
  restore(): Promise<void>;
  diagnostics(): string;
  teardown(): Promise<void>;
}

interface RepResult {
  retainedPct: number;
  stallP50Ms: number;
  stallMaxMs: number;
  quietMaxMs: number;
}

export class FailoverError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FailoverError';
  }
}

// ---- syncwall -------------------------------------------------------------

/** syncwall's failure detection: the shipped defaults (docs/CONFIG.md). */
const SYNCWALL_TIMING = { heartbeatMs: 100, failureTimeoutMs: 400 } as const;

const SYNCWALL_RULES = `accept proto tcp to ${CLUSTER.server.v4} dport ${STREAM_PORT} zone outside comment "failover streams"\n`;

async function syncwallSubject(mode: ClusterMode): Promise<Subject> {
  const ids = mode === 'load-sharing' ? [1, 2, 3] : [1, 2];
  const cl = await ClusterLab.create({ nodes: ids.length, rules: SYNCWALL_RULES, foreignCerts: false });
  let victim = 0;
  let kills = 0;
  try {
    await cl.start(ids, { mode, ...SYNCWALL_TIMING });
    await startStreamServer(cl.lab, 'srv', STREAM_PORT);
  } catch (err) {
    const diag = cl.diagnostics();
    await cl.teardown();
    throw new FailoverError(`syncwall ${mode} lab did not start: ${err instanceof Error ? err.message : String(err)}\n${diag}`, { cause: err });
  }
  return {
    name: `syncwall ${mode}`,
    lab: cl.lab,
    async ready(ports) {
      // k=1: the owner and one backup hold every flow. A CLI call that times
      // out on the loaded machine is asked again; the last failure is kept for the report.
      let lastError = '';
      await waitFor(
        async () => {
          try {
            const held = await Promise.all(cl.running().map((id) => cl.clientFlowPorts(id, STREAM_PORT)));
            return ports.every((p) => held.filter((s) => s.has(p)).length >= 2);
          } catch (err) {
            lastError = err instanceof Error ? err.message : String(err);
            return false;
          }
        },
        { timeoutMs: 60_000, intervalMs: 250, what: `every stream on 2 of nodes ${cl.running().join(',')}` },
      ).catch((err: unknown) => {
        throw new FailoverError(`syncwall ${mode}: ${err instanceof Error ? err.message : String(err)}${lastError ? `; last CLI failure: ${lastError}` : ''}`, { cause: err });
      });
    },
    async fail() {
      if (mode === 'load-sharing') {
        // A different node each time, starting with node 2 as the cluster tests do.
        victim = ids[(1 + kills++) % ids.length]!;
        const owner = victim;
        await cl.crash(owner);
        return (port) => bucketGroup(tcp4Bucket(CLUSTER.client.v4, port, CLUSTER.server.v4, STREAM_PORT), ids, mode, 1).owner === owner;
      }
      const owned = await Promise.all(ids.map(async (id) => [id, (await cl.json<{ cluster?: { bucketsOwned?: number } }>(id, ['status'])).cluster?.bucketsOwned] as const));
      const active = owned.find(([, n]) => n === 1024);
      if (!active) throw new FailoverError(`standby: no node owns all 1024 buckets: ${JSON.stringify(owned)}`);
      victim = active[0];
      await cl.crash(victim);
      return () => true;
    },
    async restore() {
      // As in the cluster tests: sync first, data once the node has rejoined
      // (the killed incarnation's XDP program is still attached).
      await cl.plug(victim, 'sync');
      await cl.start([victim], { mode, ...SYNCWALL_TIMING });
      await cl.plug(victim, 'data');
    },
    diagnostics: () => cl.diagnostics(),
    teardown: () => cl.teardown(),
  };
}

// ---- nftables + conntrackd + keepalived -----------------------------------

/**
 * Established flows and new ones to the stream server only; with
 * nf_conntrack_tcp_loose off, a mid-stream packet the table does not know is
 * invalid and dropped, so a connection survives only through a state
 * conntrackd replicated and committed (as a real stateful failover needs).
 */
const NFT_RULESET = `table inet failover {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct state new ip saddr ${CLUSTER.client.v4} ip daddr ${CLUSTER.server.v4} tcp dport ${STREAM_PORT} accept
  }
}
`;

const VRRP_ROUTER_ID = 51;
/**
 * 0.1 s: the master is declared down after 3 adverts plus skew, about
 * 360 ms, the detection budget of syncwall's default 400 ms failure timeout.
 * keepalived's minimum (MIN_ADVERT_INTERVAL_S, about 35 ms to detect) split
 * the brain on this shared 2-core machine: the backup missed adverts with
 * no failure, both nodes held the addresses and connections stalled for
 * seconds before any kill.
 */
const ADVERT_INTERVAL_S = 0.1;
/** Node 1 wins the first election; with nopreempt whoever is master stays so. */
const VRRP_PRIORITY: Record<number, number> = { 1: 150, 2: 100 };

interface PeerNode {
  id: number;
  conntrackd: Conntrackd;
  keepalived: Keepalived;
}

async function startConntrackd(lab: Lab, id: number): Promise<Conntrackd> {
  const n = clusterNode(id);
  const other = clusterNode(id === 1 ? 2 : 1);
  return Conntrackd.start(lab, {
    host: n.host,
    link: { dev: lab.dev({ dev: n.dev.sync }), local: n.sync, peer: other.sync },
    ignoreAddresses: [n.outside.v4, n.inside.v4, CLUSTER.outside.v4, CLUSTER.inside.v4],
  });
}

/** keepalived with the gateway addresses as VIPs and primary-backup.sh's conntrackd commands as its notify script. */
function startKeepalived(lab: Lab, id: number, conntrackd: Conntrackd): Promise<Keepalived> {
  const n = clusterNode(id);
  const ctl = (cmd: Parameters<typeof controlArgv>[1]): string => controlArgv(conntrackd.paths.config, cmd).join(' ');
  return Keepalived.start(lab, {
    host: n.host,
    advertDev: lab.dev({ dev: n.dev.outside }),
    routerId: VRRP_ROUTER_ID,
    priority: VRRP_PRIORITY[id]!,
    advertIntervalS: ADVERT_INTERVAL_S,
    vips: [
      { address: `${CLUSTER.outside.v4}/24`, dev: lab.dev({ dev: n.dev.outside }) },
      { address: `${CLUSTER.inside.v4}/24`, dev: lab.dev({ dev: n.dev.inside }) },
    ],
    notify: {
      // Commit the peer's states into the kernel, then start over from the kernel table and send it all to the peer.
      master: [ctl('commit'), ctl('flush'), ctl('resync'), ctl('bulkSend')],
      // Ask the master for everything it has.
      backup: [ctl('request')],
      fault: [ctl('request')],
    },
  });
}

/** "current active connections" of conntrackd's external cache, from `conntrackd -s`. */
export function externalCacheEntries(stats: string): number {
  const m = /cache external:\s*\n\s*current active connections:\s+(\d+)/.exec(stats);
  if (!m) throw new FailoverError(`conntrackd -s: no external cache count in:\n${stats}`);
  return Number(m[1]);
}

async function keepalivedSubject(): Promise<Subject> {
  await requireConntrackd();
  const lab = await createLab({ topology: clusterTopology(2) });
  const nodes = new Map<number, PeerNode>();
  let victim = 0;
  const logs = (): string => [...nodes.values()].map((p) => `--- n${p.id} keepalived\n${p.keepalived.logTail(30)}\n--- n${p.id} conntrackd\n${p.conntrackd.logTail(30)}`).join('\n');
  const startNode = async (id: number): Promise<void> => {
    const conntrackd = await startConntrackd(lab, id);
    nodes.set(id, { id, conntrackd, keepalived: await startKeepalived(lab, id, conntrackd) });
  };
  const master = async (): Promise<PeerNode> => {
    const masters = [];
    for (const p of nodes.values()) if (p.keepalived.running && (await p.keepalived.isMaster())) masters.push(p);
    if (masters.length !== 1) throw new FailoverError(`keepalived: ${masters.length} masters (nodes ${masters.map((p) => p.id).join(',')})`);
    return masters[0]!;
  };
  try {
    for (const id of [1, 2]) {
      const host = clusterNode(id).host;
      await lab.execChecked(host, ['nft', '-f', '-'], { input: NFT_RULESET });
      await lab.execChecked(host, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_tcp_loose=0']);
    }
    await startNode(1);
    await waitFor(() => nodes.get(1)!.keepalived.isMaster(), { timeoutMs: 10_000, intervalMs: 50, what: 'n1 to become VRRP master' });
    await startNode(2);
    await startStreamServer(lab, 'srv', STREAM_PORT);
  } catch (err) {
    const diag = logs();
    await lab.teardown();
    throw new FailoverError(`${KEEPALIVED_SUBJECT} lab did not start: ${err instanceof Error ? err.message : String(err)}\n${diag}`, { cause: err });
  }
  return {
    name: KEEPALIVED_SUBJECT,
    lab,
    async ready(ports) {
      const active = await master();
      const backup = [...nodes.values()].find((p) => p !== active)!;
      await waitFor(async () => externalCacheEntries(await backup.conntrackd.stats()) >= ports.length, {
        timeoutMs: 30_000,
        intervalMs: 250,
        what: `n${backup.id}'s conntrackd to hold ${ports.length} states from n${active.id}`,
      });
    },
    async fail() {
      const active = await master();
      victim = active.id;
      // As ClusterLab.crash: unplugged, then killed, so nothing leaves the node after the instant it fails.
      await lab.linksDown(clusterNode(victim).host);
      await active.keepalived.kill();
      await active.conntrackd.kill();
      return () => true;
    },
    async restore() {
      await lab.linksUp(clusterNode(victim).host);
      // A crashed conntrackd leaves its lock file and socket; the restarted one must not find them.
      const { lockFile, socket } = nodes.get(victim)!.conntrackd.paths;
      for (const f of [lockFile, socket]) rmSync(f, { force: true });
      await startNode(victim);
    },
    diagnostics: logs,
    teardown: () => lab.teardown(),
  };
}

// ---- the measurement --------------------------------------------------------

function openFleet(subject: Subject, plan: FailoverPlan): Promise<StreamFleet> {
  return StreamFleet.start(subject.lab, 'cli', CLUSTER.server.v4, STREAM_PORT, plan.conns, { intervalMs: INTERVAL_MS, maxSeconds: 900 });
}

/** One failover: quiet baseline, kill, then who moved data again and how long the carried connections stalled. */
async function failoverOnce(subject: Subject, fleet: StreamFleet, log: (line: string) => void): Promise<RepResult> {
  const before = await fleet.waitAllProgress(30_000).catch((err: unknown) => {
    // Also after the last failover's node came back: a rejoin that loses connections is reported, not hidden.
    throw new FailoverError(`${subject.name}: not every connection moves data before the kill: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  });
  await subject.ready(before.map((c) => c.localPort));
  await fleet.resetGaps();
  await sleep(QUIET_MS);
  const quiet = await fleet.report();
  await fleet.resetGaps();
  const carried = await subject.fail();
  // Marked once the node is down: a connection must move data through a survivor.
  const mark = progressMark(await fleet.report());
  const after = await fleet.settle(mark, LOST_AFTER_MS, 20);
  const retained = after.filter((c) => c.failure === null && movedSince(mark, c));
  const stalls = retained.filter((c) => carried(c.localPort)).map((c) => c.maxGapMs);
  const lost = after.filter((c) => !retained.includes(c));
  const result = {
    retainedPct: (100 * retained.length) / after.length,
    stallP50Ms: median(stalls),
    stallMaxMs: stalls.length > 0 ? Math.max(...stalls) : Number.NaN,
    quietMaxMs: maxGap(quiet),
  };
  log(`  ${subject.name}: ${retained.length}/${after.length} retained, ${stalls.length} carried by the killed node: stall p50 ${result.stallP50Ms} ms, max ${result.stallMaxMs} ms; quiet max gap ${result.quietMaxMs} ms${lost.length > 0 ? `; lost e.g. ${JSON.stringify(lost.slice(0, 3))}` : ''}`);
  return result;
}

function maxGap(conns: readonly FleetConnection[]): number {
  return Math.max(0, ...conns.map((c) => c.maxGapMs));
}

/** Failovers one after another; each result goes into `results` at once, so a later failure keeps the earlier figures. */
async function measureSubject(subject: Subject, plan: FailoverPlan, results: RepResult[], log: (line: string) => void): Promise<void> {
  const t0 = Date.now();
  let fleet = await openFleet(subject, plan);
  log(`  ${subject.name}: ${plan.conns} connections open in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    if (fleet.failedToConnect > 0) throw new FailoverError(`${subject.name}: ${fleet.failedToConnect} of ${plan.conns} connections failed to open`);
    for (let rep = 0; rep < plan.reps; rep++) {
      if (rep > 0) {
        await subject.restore();
        // Connections lost in the last failover would never move again: start over with a full fleet.
        if (results.at(-1)!.retainedPct < 100) {
          await fleet.stop();
          fleet = await openFleet(subject, plan);
        }
      }
      results.push(await failoverOnce(subject, fleet, log));
    }
    await fleet.stop();
  } catch (err) {
    log(subject.diagnostics());
    throw err;
  }
}

function addFigures(report: Report, subject: string, results: readonly RepResult[], plan: FailoverPlan): void {
  const isSyncwall = subject !== KEEPALIVED_SUBJECT;
  const vsPeer = isSyncwall ? { peer: KEEPALIVED_SUBJECT } : {};
  const base = { section: SECTION, subject, ...vsPeer } as const;
  const carried = subject === 'syncwall load-sharing' ? 'the killed node\'s third of the' : 'all';
  report.add({
    ...base, name: `connections retained (${plan.conns} at ${INTERVAL_MS} ms)`, unit: '%', better: 'higher', reps: results.map((r) => r.retainedPct),
    ...(isSyncwall ? { target: { op: '>=', value: 100, on: 'value' } as const } : {}),
  });
  for (const [name, pick] of [['stall p50', (r: RepResult) => r.stallP50Ms], ['stall max', (r: RepResult) => r.stallMaxMs]] as const) {
    report.add({
      ...base, name, unit: 'ms', better: 'lower', reps: results.map(pick),
      ...(isSyncwall ? { target: { op: '<=', value: 250, on: 'value' } as const } : {}),
      note: `largest gap between echoes of ${carried} connections, failure detection included`,
    });
  }
  report.add({
    section: SECTION, subject, name: 'largest gap, no failure', unit: 'ms', better: 'lower', reps: results.map((r) => r.quietMaxMs),
    note: `over ${QUIET_MS} ms before each kill: what the loaded machine alone costs`,
  });
}

/** Item 7: every subject in turn, each lab removed before the next is built. */
export async function failover(report: Report, plan: FailoverPlan, log: (line: string) => void): Promise<void> {
  const subjects: [string, () => Promise<Subject>][] = [
    ['syncwall load-sharing', () => syncwallSubject('load-sharing')],
    ['syncwall standby', () => syncwallSubject('standby')],
    [KEEPALIVED_SUBJECT, keepalivedSubject],
  ];
  log(`failover: ${plan.conns} connections every ${INTERVAL_MS} ms, ${plan.reps} failover(s) per subject; syncwall heartbeat ${SYNCWALL_TIMING.heartbeatMs} ms, failure timeout ${SYNCWALL_TIMING.failureTimeoutMs} ms; keepalived advert_int ${ADVERT_INTERVAL_S} s (its minimum is ${MIN_ADVERT_INTERVAL_S} s)`);
  for (const [name, build] of subjects) {
    const t0 = Date.now();
    try {
      const subject = await build();
      log(`  ${name}: lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const onSigint = (): void => void subject.teardown().finally(() => process.exit(130));
      process.once('SIGINT', onSigint);
      const results: RepResult[] = [];
      try {
        await measureSubject(subject, plan, results, log);
      } finally {
        process.off('SIGINT', onSigint);
        await subject.teardown();
        if (results.length > 0) addFigures(report, name, results, plan);
        log(`  ${name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
    } catch (err) {
      // One subject failing must not cost the others' figures.
      report.problem(`${SECTION}: ${name}`, err);
      log(`failover: ${name} failed: ${err instanceof Error ? err.stack : String(err)}`);
    }
  }
}
