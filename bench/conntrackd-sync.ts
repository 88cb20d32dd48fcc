// Item 6, the peer: conntrackd in FTFW mode between two firewall namespaces
// on a dedicated veth link (UDP). Node B runs with DisableExternalCache, so
// a replicated state lands straight in B's kernel conntrack table: the same
// "created on the owner → usable on the backup" span syncwall's
// bench/sync-latency.ts measures for its map.
//
// Entries are created in A's kernel table with conntrack(8): one `-I` per
// spaced entry, a `--load-file` batch for the burst, which is also the
// sustained-rate test. conntrack(8) inserts a batch at some 20k-100k
// entries/s here, about conntrackd's own pace, so the wall-clock rate is a
// lower bound; the per-core rate (1 s over both daemons' CPU time per
// entry) is the figure to compare. Both ends are timed by the kernel: with
// nf_conntrack_timestamp on, every entry carries its creation time, and once
// B's table holds all of a phase's entries both tables are dumped
// (`conntrack -L -o xml,ktimestamp`). The latency is an entry's creation in
// B's table minus its creation in A's, in ns of the one clock; no listener's
// scheduling enters it. (NEW events carry no timestamp, and `conntrack -E`
// loses events of a burst: 1.4.7 applies --buffer-size to its query socket,
// not to the event socket.)
// CPU is both daemons' run time over the burst, bytes are the frames on both
// sync interfaces (Ethernet, IP, UDP and FTFW acks included).
// A second pair runs conntrackd's default, B with its external cache (states
// usable only after a commit at takeover): its cheapest mode, of which only
// the cost is measured.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLab, type Lab } from '../test/lab/netns.js';
import { sleep, waitFor } from '../test/lab/poll.js';
import { clusterNode, type Topology } from '../test/lab/topology.js';
import { Conntrackd, requireConntrackd } from './lib/conntrackd.js';
import type { Report } from './lib/report.js';
import { LatencyHistogram } from '../control/src/stats/latency-histogram.js';

/** Subjects of conntrackd's rows in section 6, which syncwall's rows (micro.ts) take as peers. */
export const CONNTRACKD_SUBJECT = {
  total: 'conntrackd FTFW',
  spaced: 'conntrackd FTFW, spaced',
  burst: (n: number) => `conntrackd FTFW, burst of ${n}`,
  externalCache: 'conntrackd FTFW, external cache',
} as const;

const SPACING_MS = 5;
/** After the last arrival: FTFW acks still flow back and are part of the cost. */
const ACK_SETTLE_MS = 300;
/** Each phase's entries come from their own 10.<phase>.0.0/16, so a dump can ask for just them. */
const PHASE_SIZE = 1 << 16;

const [A, B] = [clusterNode(1), clusterNode(2)];

/** Two firewall nodes joined by their sync link only: nothing else runs in them. */
function syncPairTopology(): Topology {
  return {
    hosts: [A, B].map((n) => ({ name: n.host, role: 'firewall' as const })),
    links: [{ a: { host: A.host, dev: A.dev.sync, sync: true, addrs: [`${A.sync}/24`] }, b: { host: B.host, dev: B.dev.sync, sync: true, addrs: [`${B.sync}/24`] } }],
  };
}

/** conntrack(8) arguments that create entry i of a phase: a TCP connection from its own client address, established both ways. */
function entryArgs(phase: number, i: number): string[] {
  return ['-I', '-s', clientAddr(phase, i), '-d', '10.200.0.1', '-p', 'tcp', '--sport', '40000', '--dport', '443', '--state', 'ESTABLISHED', '-t', '600', '-u', 'SEEN_REPLY,ASSURED'];
}

function clientAddr(phase: number, i: number): string {
  return `10.${phase}.${i >> 8}.${i & 255}`;
}

interface SyncPair {
  lab: Lab;
  daemons: Conntrackd[];
  /** B keeps received states in conntrackd's external cache (the default) rather than its kernel table. */
  externalCache: boolean;
  /** The next phase's number: its /16 of client addresses. */
  phase: number;
}

async function startPair(externalCache: boolean): Promise<SyncPair> {
  await requireConntrackd();
  const lab = await createLab({ topology: syncPairTopology() });
  try {
    // Creation timestamps on every entry, A's and the ones conntrackd inserts on B.
    for (const n of [A, B]) await lab.execChecked(n.host, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_timestamp=1']);
    const link = (self: typeof A, other: typeof A) => ({ dev: lab.dev({ dev: self.dev.sync }), local: self.sync, peer: other.sync });
    const daemons = [
      await Conntrackd.start(lab, { host: A.host, link: link(A, B) }),
      await Conntrackd.start(lab, { host: B.host, link: link(B, A), disableExternalCache: !externalCache }),
    ];
    const pair = { lab, daemons, externalCache, phase: 1 };
    // One entry end to end before anything is timed: the sync works.
    await replicate(pair, 1, 'spaced', 10_000);
    return pair;
  } catch (err) {
    await lab.teardown();
    throw err;
  }
}

/** A phase's entries on A: one conntrack -I each, SPACING_MS apart, or one --load-file batch. */
async function createEntries(pair: SyncPair, phase: number, count: number, how: 'spaced' | 'burst'): Promise<void> {
  if (how === 'spaced') {
    for (let i = 0; i < count; i++) {
      await pair.lab.execChecked(A.host, ['conntrack', ...entryArgs(phase, i)]);
      await sleep(SPACING_MS);
    }
    return;
  }
  const file = join(pair.lab.tmpDir, `burst-${phase}.txt`);
  writeFileSync(file, Array.from({ length: count }, (_, i) => `${entryArgs(phase, i).join(' ')}\n`).join(''));
  await pair.lab.execChecked(A.host, ['conntrack', '--load-file', file], { timeoutMs: 60_000 });
}

/** Entries of a phase in a host's table, by client address: their creation time, µs (CLOCK_REALTIME, ns precision). */
async function creationTimes(lab: Lab, host: string, phase: number): Promise<Map<string, number>> {
  const r = await lab.execChecked(host, ['conntrack', '-L', '-o', 'xml,ktimestamp', '-s', `10.${phase}.0.0`, '--mask-src', '255.255.0.0'], { timeoutMs: 60_000 });
  const times = new Map<string, number>();
  for (const m of r.stdout.matchAll(/<flow><meta direction="original"><layer3[^>]*><src>([^<]+)<\/src>.*?<start>(\d+)<\/start>/g)) {
    times.set(m[1]!, Number(BigInt(m[2]!) / 1000n));
  }
  return times;
}

/** Entries B holds: its kernel table's, or with the external cache, that cache's. */
async function heldOnB(pair: SyncPair): Promise<number> {
  if (!pair.externalCache) return Number((await pair.lab.execChecked(B.host, ['conntrack', '-C'])).stdout.trim());
  const stats = await pair.daemons[1]!.stats();
  const m = /cache external:\s*\ncurrent active connections:\s*(\d+)/.exec(stats);
  if (!m) throw new Error(`no external cache count in conntrackd -s on ${B.host}:\n${stats}`);
  return Number(m[1]);
}

/** Creates a phase's entries on A and waits (bounded) until B holds them all; the phase. */
async function replicate(pair: SyncPair, count: number, how: 'spaced' | 'burst', timeoutMs: number): Promise<number> {
  if (count > PHASE_SIZE) throw new Error(`${count} entries: a phase holds at most ${PHASE_SIZE}`);
  const phase = pair.phase++;
  if (phase > 255) throw new Error('out of 10.x.0.0/16 client ranges: too many phases for one pair');
  // Every earlier phase is complete on B, so B is complete when it holds this many.
  const expected = (await heldOnB(pair)) + count;
  await createEntries(pair, phase, count, how);
  try {
    await waitFor(async () => (await heldOnB(pair)) >= expected, { timeoutMs, intervalMs: 20, what: `${count} ${how} entries on ${B.host}` });
  } catch (err) {
    throw new Error(`${how} entries: ${B.host} holds ${await heldOnB(pair)} of ${expected}; conntrackd: ${pair.daemons.map((d) => d.logTail(3)).join(' | ')}`, { cause: err });
  }
  return phase;
}

/** The A→B latency of each entry of a phase (B's kernel table), and the span from the first creation on A to the last on B. */
async function latencies(pair: SyncPair, phase: number, count: number): Promise<{ latency: LatencyHistogram; spanUs: number }> {
  const [onA, onB] = [await creationTimes(pair.lab, A.host, phase), await creationTimes(pair.lab, B.host, phase)];
  const latency = new LatencyHistogram();
  let first = Infinity;
  let last = 0;
  for (let i = 0; i < count; i++) {
    const addr = clientAddr(phase, i);
    const created = onA.get(addr);
    const arrived = onB.get(addr);
    if (created === undefined || arrived === undefined) throw new Error(`entry from ${addr} is missing in the table of ${created === undefined ? A.host : B.host}`);
    latency.record(Math.max(0, arrived - created));
    first = Math.min(first, created);
    last = Math.max(last, arrived);
  }
  return { latency, spanUs: last - first };
}

async function txBytes(lab: Lab, node: typeof A): Promise<number> {
  const r = await lab.execChecked(node.host, ['ip', '-j', '-s', 'link', 'show', 'dev', lab.dev({ dev: node.dev.sync })]);
  const bytes = (JSON.parse(r.stdout) as { stats64?: { tx?: { bytes?: number } } }[])[0]?.stats64?.tx?.bytes;
  if (typeof bytes !== 'number') throw new Error(`no tx byte counter for ${lab.dev({ dev: node.dev.sync })} in ${r.stdout}`);
  return bytes;
}

interface Rep {
  spacedP50: number;
  spacedP99: number;
  burstP50: number;
  burstP99: number;
  eventsPerSec: number;
  cpuUsPerEvent: number;
  wireBytesPerEvent: number;
}

/** A burst of entries: both daemons' CPU per entry and both sync links' bytes per entry, the last acks included; the phase. */
async function burstCost(pair: SyncPair, burst: number): Promise<{ phase: number; cpuUsPerEvent: number; wireBytesPerEvent: number }> {
  const cpu0 = pair.daemons.map((d) => d.cpuNs());
  const bytes0 = (await txBytes(pair.lab, A)) + (await txBytes(pair.lab, B));
  const phase = await replicate(pair, burst, 'burst', 60_000);
  await sleep(ACK_SETTLE_MS);
  const cpuNs = pair.daemons.reduce((sum, d, i) => sum + d.cpuNs() - cpu0[i]!, 0);
  const bytes = (await txBytes(pair.lab, A)) + (await txBytes(pair.lab, B)) - bytes0;
  for (const d of pair.daemons) if (!d.running) throw new Error(`conntrackd on ${d.host} exited during the burst: ${d.logTail()}`);
  return { phase, cpuUsPerEvent: cpuNs / 1000 / burst, wireBytesPerEvent: bytes / burst };
}

async function measure(pair: SyncPair, spaced: number, burst: number): Promise<Rep> {
  const sp = await latencies(pair, await replicate(pair, spaced, 'spaced', 10_000), spaced);
  const cost = await burstCost(pair, burst);
  const bu = await latencies(pair, cost.phase, burst);
  return {
    spacedP50: sp.latency.quantileUs(0.5),
    spacedP99: sp.latency.quantileUs(0.99),
    burstP50: bu.latency.quantileUs(0.5),
    burstP99: bu.latency.quantileUs(0.99),
    eventsPerSec: burst / (bu.spanUs / 1e6),
    cpuUsPerEvent: cost.cpuUsPerEvent,
    wireBytesPerEvent: cost.wireBytesPerEvent,
  };
}

/**
 * conntrackd's rows of section 6 (the subjects in CONNTRACKD_SUBJECT), in
 * the names syncwall's rows use so each pairs with its peer.
 */
export async function conntrackdSync(report: Report, opts: { quick: boolean; reps: number; burst: number }): Promise<void> {
  const spaced = opts.quick ? 50 : 200;
  const reps: Rep[] = [];
  const kernel = await startPair(false);
  try {
    for (let i = 0; i < opts.reps; i++) reps.push(await measure(kernel, spaced, opts.burst));
  } finally {
    await kernel.lab.teardown();
  }
  // conntrackd's default and cheapest mode: B only caches what it receives
  // (usable after a commit at takeover), so only its cost is measured.
  const cacheCpuUs: number[] = [];
  const cached = await startPair(true);
  try {
    for (let i = 0; i < opts.reps; i++) cacheCpuUs.push((await burstCost(cached, opts.burst)).cpuUsPerEvent);
  } finally {
    await cached.lab.teardown();
  }
  const s = '6 sync';
  const note = "in B's kernel table (DisableExternalCache); the kernel's creation timestamps on both nodes";
  const col = (k: keyof Rep): number[] => reps.map((r) => r[k]);
  const latency = (q: string, subject: string, k: keyof Rep) =>
    report.add({ section: s, name: `created on owner → in backup map, ${q}`, subject, unit: 'µs', better: 'lower', reps: col(k), note });
  latency('p50', CONNTRACKD_SUBJECT.spaced, 'spacedP50');
  latency('p99', CONNTRACKD_SUBJECT.spaced, 'spacedP99');
  latency('p50', CONNTRACKD_SUBJECT.burst(opts.burst), 'burstP50');
  latency('p99', CONNTRACKD_SUBJECT.burst(opts.burst), 'burstP99');
  const total = { section: s, subject: CONNTRACKD_SUBJECT.total };
  report.add({ ...total, name: 'replicated entries/s (burst, two namespaces)', unit: 'entries/s', better: 'higher', reps: col('eventsPerSec'), note: 'first created on A to last created on B' });
  report.add({ ...total, name: 'replicated entries/s per core', unit: 'entries/s', better: 'higher', reps: reps.map((r) => 1e6 / r.cpuUsPerEvent), note: '1 s / CPU per entry' });
  report.add({ ...total, name: 'CPU per replicated entry', unit: 'µs', better: 'lower', reps: col('cpuUsPerEvent'), note: 'both daemons' });
  const cache = { section: s, subject: CONNTRACKD_SUBJECT.externalCache, unit: 'entries/s', better: 'higher', peer: CONNTRACKD_SUBJECT.total } as const;
  report.add({ ...cache, name: 'replicated entries/s per core', reps: cacheCpuUs.map((us) => 1e6 / us), note: "B keeps states in conntrackd's cache (commit at takeover)" });
  report.add({ ...cache, name: 'CPU per replicated entry', unit: 'µs', better: 'lower', reps: cacheCpuUs });
  report.add({ ...total, name: 'wire bytes per entry', unit: 'B', better: 'lower', reps: col('wireBytesPerEvent'), note: 'frames on both sync interfaces, acks included' });
}
