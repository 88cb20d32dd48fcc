// Item 9: a SYN flood while established flows run. The single-firewall lab
// gets a second outside host, the attacker `atk`, whose trafgen sends TCP
// SYNs from random addresses of a spoofed /16 and random ports (a fresh
// 5-tuple each, so every SYN is a new-flow attempt) to the server's iperf3
// port, which both firewalls admit. The established flows are item 2's
// (bench/forwarding.ts): trafgen over opened UDP flows into an XDP_DROP sink.
//
// Each repetition measures, flood off and on: the harness ceiling (both
// generators into XDP_DROPs on the firewall's ingress: what two generators
// on these CPUs allow at all), nftables+ct, and syncwall with the product's
// default punt limiter and table size. The controller's capacity is
// measured in the same run: punts syncwalld decides per second under the
// flood alone (syncwallRep). The CLI is timed during syncwall's windows.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { StatsView } from '../control/src/api/backend.js';
import { ManagementClient } from '../control/src/api/client.js';
import { configSchema } from '../control/src/config/schema.js';
import type { Lab } from '../test/lab/netns.js';
import { sleep } from '../test/lab/poll.js';
import { singleFirewall, SINGLE, type Topology } from '../test/lab/topology.js';
import { startUdpEcho } from '../test/lab/traffic.js';
import {
  attachDrop, ceilingPps, detachDrop, forwardedPps, generatorDied, GeneratorDied, mac, openUdpFlows, prepareForwarding, retryGeneratorWindow, startTrafgen, stopTrafgen,
  type ForwardingLab,
} from './forwarding.js';
import {
  applyNftConntrack, BENCH_PORTS, removeNftConntrack, removeSyncwall, syncwallBenchRules,
} from './lib/firewalls.js';
import { inLab } from './lib/bench-lab.js';
import type { Report } from './lib/report.js';
import { median } from './lib/stats.js';
import { startIperfServer } from './tcp-bulk.js';

export interface SynFloodPlan {
  reps: number;
  /** Established UDP flows (item 2's generator). */
  flows: number;
  /** Counting window of one established-pps measurement. */
  windowMs: number;
}

/** The attacker's link to the firewall, and the sources it spoofs (routed back to it by the firewall). */
const ATTACKER = { v4: '10.3.0.2', fw: '10.3.0.1', spoofed: '10.4.0.0/16' } as const;
/**
 * The flood's CPU. The established generator's trafgen runs on CPU 0, and a
 * veth's receiver (the firewall's XDP or stack, then the sink's) runs on the
 * sender's CPU: on one CPU, the two generators would split it between them
 * whatever the firewall does.
 */
const FLOOD_CPU = 1;
/** Time for the flood to reach full rate (and the controller's backlog to build) before measuring. */
const FLOOD_RAMP_MS = 500;
/** timeout(1)'s bound on the flood beyond its windows; it is normally stopped by a signal. */
const FLOOD_MARGIN_MS = 60_000;
/** A CLI call is started this often during a window (each one is a Node process: a busy loop would be the load). */
const CLI_INTERVAL_MS = 500;

/** The product's own punt limiter and table size: what `syncwall.yaml` gives without these keys. */
const PRODUCT_DEFAULTS = { punt: configSchema.shape.punt.parse(undefined), tables: configSchema.shape.tables.parse(undefined) };

export class SynFloodError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SynFloodError';
  }
}

/** singleFirewall plus the attacker `atk` on a second outside interface of the firewall. */
function floodTopology(): Topology {
  const t = singleFirewall();
  return {
    hosts: [
      ...t.hosts.map((h) => (h.name === 'fw' ? { ...h, routes: [...(h.routes ?? []), { to: ATTACKER.spoofed, via: ATTACKER.v4 }] } : h)),
      { name: 'atk', role: 'endpoint' },
    ],
    links: [
      ...t.links,
      {
        a: { host: 'atk', dev: 'atk', addrs: [`${ATTACKER.v4}/24`] },
        b: { host: 'fw', dev: 'fwa', zone: 'outside', addrs: [`${ATTACKER.fw}/24`] },
      },
    ],
  };
}

function macBytes(address: string): string {
  return address.split(':').map((b) => `0x${b}`).join(', ');
}

interface Flood {
  conf: string;
  /** The attacker's sending device and the firewall's device that receives the flood. */
  atkDev: string;
  fwDev: string;
}

/**
 * trafgen configuration of the flood: 54-byte IPv4 TCP SYNs, source address
 * 10.4.x.x and source port random, sequence number random; trafgen fills in
 * the IP and TCP checksums per frame. Sent from FLOOD_CPU only.
 */
async function prepareFlood(lab: Lab): Promise<Flood> {
  const atkDev = `${lab.prefix}-atk`;
  const fwDev = `${lab.prefix}-fwa`;
  const [atkMac, fwMac] = await Promise.all([mac(lab, 'atk', atkDev), mac(lab, 'fw', fwDev)]);
  const server = SINGLE.server.v4.split('.').join(', ');
  const spoofedNet = ATTACKER.spoofed.split('.').slice(0, 2).join(', ');
  const SYN = 0x02;
  const conf = join(lab.tmpDir, 'synflood.trafgen');
  if (cpus().length <= FLOOD_CPU) throw new SynFloodError(`the flood runs on CPU ${FLOOD_CPU}, the established flows on CPU 0: this machine has ${cpus().length} CPU(s)`);
  writeFileSync(
    conf,
    [
      `cpu(${FLOOD_CPU}): {`,
      `  ${macBytes(fwMac)}, ${macBytes(atkMac)}, const16(0x0800),`,
      '  0x45, 0x00, const16(40), const16(0), 0x40, 0x00, 64, 6, csumip(14, 33),',
      `  ${spoofedNet}, drnd(2), ${server},`,
      `  drnd(2), const16(${BENCH_PORTS.iperf}), drnd(4), const32(0), const16((5 << 12) | ${SYN}), const16(64240), csumtcp(14, 34), const16(0)`,
      '}',
      '',
    ].join('\n'),
  );
  return { conf, atkDev, fwDev };
}

/** Frames a device of a host has received so far (XDP and stack alike). */
async function rxPackets(lab: Lab, host: string, dev: string): Promise<number> {
  const r = await lab.execChecked(host, ['ip', '-s', '-j', 'link', 'show', 'dev', dev]);
  const packets = (JSON.parse(r.stdout) as { stats64?: { rx?: { packets?: number } } }[])[0]?.stats64?.rx?.packets;
  if (packets === undefined) throw new SynFloodError(`no receive statistics for ${dev} on ${host}`);
  return packets;
}

function delta(before: Record<string, bigint>, after: Record<string, bigint>, name: string): number {
  const a = after[name];
  const b = before[name];
  if (a === undefined || b === undefined) throw new SynFloodError(`syncwall stats has no counter ${name}`);
  return Number(a - b);
}

/** Punts the controller decided (admitted, dropped or rejected by the rules), not those it discarded as stale. */
function decided(before: StatsView, after: StatsView): number {
  return ['punts_accepted', 'punts_dropped', 'punts_rejected'].reduce((n, c) => n + delta(before.controller, after.controller, c), 0);
}

interface Window<T> {
  result: T;
  /** Flood frames per second the firewall's attacker-facing device received (0 without a flood). */
  floodPps: number;
  seconds: number;
}

/**
 * Runs fn with the flood on: the flood starts, ramps, fn runs, the flood
 * stops. The flood's rate is counted over fn's run. A window whose flood
 * generator died is run again (retryGeneratorWindow).
 */
function duringFlood<T>(lab: Lab, flood: Flood, fn: () => Promise<T>): Promise<Window<T>> {
  return retryGeneratorWindow('the SYN flood', () => floodOnce(lab, flood, fn));
}

async function floodOnce<T>(lab: Lab, flood: Flood, fn: () => Promise<T>): Promise<Window<T> | GeneratorDied> {
  const boundMs = FLOOD_MARGIN_MS;
  const gen = startTrafgen(lab, 'atk', flood.atkDev, flood.conf, boundMs, FLOOD_CPU + 1);
  try {
    await sleep(FLOOD_RAMP_MS);
    if (!gen.running) return generatorDied(gen, 'during the flood\'s ramp');
    const t0 = process.hrtime.bigint();
    const before = await rxPackets(lab, 'fw', flood.fwDev);
    const result = await fn();
    const after = await rxPackets(lab, 'fw', flood.fwDev);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (!gen.running) return generatorDied(gen, 'before the flood\'s window ended');
    return { result, floodPps: (after - before) / seconds, seconds };
  } finally {
    await stopTrafgen(gen, boundMs);
  }
}

interface CliTimes {
  /** Answer times of the `syncwall` CLI (a process each) and of the same calls over the management API from this process. */
  cliMs: number[];
  rpcMs: number[];
  failures: string[];
}

/**
 * For windowMs, `syncwall status` and `syncwall stats` take turns every
 * CLI_INTERVAL_MS, each followed by the same call from this process; times
 * each answer. The CLI's time includes starting Node; the in-process call's
 * is the daemon's own answer. A call under way when the window ends is
 * waited for.
 */
async function probeCli(lab: Lab, client: ManagementClient, windowMs: number): Promise<CliTimes> {
  const cli: CliTimes = { cliMs: [], rpcMs: [], failures: [] };
  const end = performance.now() + windowMs;
  for (let i = 0; performance.now() < end; i++) {
    const command = i % 2 === 0 ? 'status' : 'stats';
    const t0 = performance.now();
    const r = await lab.cli([command, '--json']);
    const ms = performance.now() - t0;
    if (r.code === 0) cli.cliMs.push(ms);
    else cli.failures.push(`syncwall ${command}: exit ${r.code} after ${ms.toFixed(0)} ms: ${r.stderr.trim().slice(0, 200)}`);
    const t1 = performance.now();
    try {
      await (command === 'status' ? client.status() : client.stats());
      cli.rpcMs.push(performance.now() - t1);
    } catch (err) {
      cli.failures.push(`${command} over the API: ${err instanceof Error ? err.message : String(err)}`);
    }
    await sleep(Math.max(0, Math.min(end, t0 + CLI_INTERVAL_MS) - performance.now()));
  }
  return cli;
}

type Subject = 'ceiling' | 'nftables+ct' | 'syncwall';

/** One repetition's raw figures. */
interface Rep {
  pps: Record<Subject, { calm: number; flood: number; floodPps: number }>;
  /** Under the flood alone: punts decided and passed by the limiter per second, and punts lost to the backlog (stale or ring full). */
  capacity: { decidedPerSec: number; passedPerSec: number; backlog: number };
  /** Under the flood with the established flows. */
  limiter: { passedPerSec: number; droppedPerSec: number; decidedPerSec: number; ringFull: number; stale: number; tableFull: number };
  /** syncwalld's CPU use in cores, flood off and on. */
  cpu: { calm: number; flood: number };
  cli: { calm: CliTimes; flood: CliTimes };
}

async function ceilingRep(lab: Lab, fl: ForwardingLab, flood: Flood, plan: SynFloodPlan): Promise<Rep['pps']['ceiling']> {
  const calm = await ceilingPps(lab, fl, plan.windowMs);
  // The flood ends in an XDP_DROP too: what is left is the generators' share of the CPUs.
  await attachDrop(lab, 'fw', flood.fwDev);
  try {
    const w = await duringFlood(lab, flood, () => ceilingPps(lab, fl, plan.windowMs));
    return { calm, flood: w.result, floodPps: w.floodPps };
  } finally {
    await detachDrop(lab, 'fw', flood.fwDev);
  }
}

async function nftablesRep(lab: Lab, fl: ForwardingLab, flood: Flood, plan: SynFloodPlan): Promise<Rep['pps']['nftables+ct']> {
  await applyNftConntrack(lab, 'fw', SINGLE.server.v4);
  try {
    await openUdpFlows(lab, fl);
    const calm = await forwardedPps(lab, fl, plan.windowMs);
    const w = await duringFlood(lab, flood, () => forwardedPps(lab, fl, plan.windowMs));
    return { calm, flood: w.result, floodPps: w.floodPps };
  } finally {
    await removeNftConntrack(lab, 'fw');
  }
}

/** CPU seconds a process (all its threads) has used: utime + stime of /proc/<pid>/stat. */
function cpuSeconds(pid: number, ticksPerSecond: number): number {
  const path = `/proc/${pid}/stat`;
  const text = readFileSync(path, 'utf8');
  // Fields after the parenthesised command name, which may hold spaces: state is field 3, utime 14, stime 15.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new SynFloodError(`${path}: no utime/stime in ${text}`);
  return ticks / ticksPerSecond;
}

/**
 * syncwalld's counters and the time they were read at: the middle of the
 * call, as the daemon answers somewhere within it (under a flood, a call
 * can take most of a second).
 */
async function stampedStats(client: ManagementClient): Promise<{ stats: StatsView; atNs: bigint }> {
  const sent = process.hrtime.bigint();
  const stats = await client.stats();
  return { stats, atNs: (sent + process.hrtime.bigint()) / 2n };
}

/**
 * Counter and CPU deltas of syncwalld over fn's run. Counters are read over
 * the management API from this process: a CLI process takes seconds to
 * start on a loaded machine, which would skew the window.
 */
async function watchSyncwall<T>(client: ManagementClient, pid: number, ticksPerSecond: number, fn: () => Promise<T>): Promise<{ result: T; before: StatsView; after: StatsView; seconds: number; cores: number }> {
  const before = await stampedStats(client);
  const cpu0 = cpuSeconds(pid, ticksPerSecond);
  const t0 = process.hrtime.bigint();
  const result = await fn();
  const cores = (cpuSeconds(pid, ticksPerSecond) - cpu0) / (Number(process.hrtime.bigint() - t0) / 1e9);
  const after = await stampedStats(client);
  return { result, before: before.stats, after: after.stats, seconds: Number(after.atNs - before.atNs) / 1e9, cores };
}

/**
 * syncwalld at the product's punt limiter and table size. Flood off: the
 * established pps, then the CLI's answer times. Flood on: first alone for a
 * window, whose punts decided per second are the controller's capacity (it
 * is saturated when the limiter passes more than it decides: the backlog
 * ages into stale punts or fills the ring); then the CLI's answer times;
 * then the established pps. The CLI has windows of its own: a Node process
 * per call costs CPU the established flows would otherwise get, and
 * nftables+ct has no such load.
 */
async function syncwallRep(lab: Lab, fl: ForwardingLab, flood: Flood, plan: SynFloodPlan): Promise<Omit<Rep, 'pps'> & { pps: Rep['pps']['syncwall'] }> {
  const daemon = await lab.startDaemon({ rules: syncwallBenchRules(SINGLE.server.v4), config: PRODUCT_DEFAULTS });
  const client = new ManagementClient(daemon.socketPath);
  try {
    const pid = daemon.process?.pid;
    if (pid === undefined) throw new SynFloodError('syncwalld has no process');
    const ticksPerSecond = Number((await lab.execChecked('fw', ['getconf', 'CLK_TCK'])).stdout.trim());
    const watch = <T>(fn: () => Promise<T>) => watchSyncwall(client, pid, ticksPerSecond, fn);
    await openUdpFlows(lab, fl);
    const calm = await watch(() => forwardedPps(lab, fl, plan.windowMs));
    const calmCli = await probeCli(lab, client, plan.windowMs);
    const w = await duringFlood(lab, flood, async () => {
      const alone = await watch(() => sleep(plan.windowMs));
      const cli = await probeCli(lab, client, plan.windowMs);
      const mixed = await watch(() => forwardedPps(lab, fl, plan.windowMs));
      return { alone, cli, mixed };
    });
    const { alone, mixed } = w.result;
    type Watched = { before: StatsView; after: StatsView };
    const dp = (x: Watched, name: string): number => delta(x.before.datapath, x.after.datapath, name);
    const ctl = (x: Watched, name: string): number => delta(x.before.controller, x.after.controller, name);
    const backlog = (x: Watched): number => dp(x, 'drop_punt_ring_full') + ctl(x, 'punts_stale');
    return {
      pps: { calm: calm.result, flood: mixed.result, floodPps: w.floodPps },
      capacity: {
        decidedPerSec: decided(alone.before, alone.after) / alone.seconds,
        passedPerSec: dp(alone, 'punt_new') / alone.seconds,
        backlog: backlog(alone),
      },
      limiter: {
        passedPerSec: dp(mixed, 'punt_new') / mixed.seconds,
        droppedPerSec: dp(mixed, 'drop_punt_limit') / mixed.seconds,
        decidedPerSec: decided(mixed.before, mixed.after) / mixed.seconds,
        ringFull: dp(mixed, 'drop_punt_ring_full'),
        stale: ctl(mixed, 'punts_stale'),
        tableFull: ctl(mixed, 'table_full'),
      },
      cpu: { calm: calm.cores, flood: mixed.cores },
      cli: { calm: calmCli, flood: w.result.cli },
    };
  } finally {
    client.close();
    await removeSyncwall(lab, daemon);
  }
}

/** Runs one phase of a repetition and logs how long it took (the part has a time budget). */
async function phase<T>(name: string, log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const result = await fn();
  log(`  ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return result;
}

async function measureRep(lab: Lab, plan: SynFloodPlan, log: (line: string) => void): Promise<Rep> {
  const fl = await prepareForwarding(lab, plan.flows);
  const flood = await prepareFlood(lab);
  const ceiling = await phase('ceiling', log, () => ceilingRep(lab, fl, flood, plan));
  const nftables = await phase('nftables+ct', log, () => nftablesRep(lab, fl, flood, plan));
  const sw = await phase('syncwall', log, () => syncwallRep(lab, fl, flood, plan));
  return { ...sw, pps: { ceiling, 'nftables+ct': nftables, syncwall: sw.pps } };
}

function addFigures(report: Report, reps: Rep[]): void {
  const section = '9 syn flood';
  const calmName = 'established 64 B UDP, no flood';
  const floodName = 'established 64 B UDP, during flood';
  const subjects: Subject[] = ['ceiling', 'nftables+ct', 'syncwall'];
  for (const subject of subjects) {
    report.add({ section, name: calmName, subject, unit: 'pps', better: 'higher', reps: reps.map((r) => r.pps[subject].calm) });
  }
  for (const subject of subjects) {
    report.add({
      section, name: floodName, subject, unit: 'pps', better: 'higher', reps: reps.map((r) => r.pps[subject].flood), peer: subject, peerName: calmName,
      ...(subject === 'syncwall' ? { target: { op: '>=', value: 0.9 } as const, note: `punt limiter at the product default (${PRODUCT_DEFAULTS.punt.rate}/s per CPU, burst ${PRODUCT_DEFAULTS.punt.burst}); the flood arrives on CPU ${FLOOD_CPU} only, so one CPU's bucket applies` } : {}),
      ...(subject === 'ceiling' ? { note: 'both generators into XDP_DROPs on the firewall ingress: the share of the CPUs the generators leave' } : {}),
    });
  }
  const floodRate = { section, name: 'SYN flood received by the firewall', unit: 'pps', better: 'higher' } as const;
  for (const subject of subjects) report.add({ ...floodRate, subject, reps: reps.map((r) => r.pps[subject].floodPps) });

  const unsaturated = reps.filter((r) => r.capacity.backlog === 0).length;
  report.add({
    section, name: 'controller capacity: punts decided/s under the flood alone', subject: 'syncwall', unit: 'punts/s', better: 'higher',
    reps: reps.map((r) => r.capacity.decidedPerSec),
    note: unsaturated === 0
      ? `saturated in every repetition: the limiter passed ${reps.map((r) => Math.round(r.capacity.passedPerSec)).join(', ')}/s, the excess aged out (${reps.map((r) => r.capacity.backlog).join(', ')} stale or ring-full)`
      : `not saturated in ${unsaturated} of ${reps.length} repetitions (no stale or ring-full punt): there the limiter, not the controller, set the rate and this is a lower bound`,
  });
  report.add({
    section, name: 'flood / controller capacity', subject: 'syncwall', unit: '×', better: 'higher',
    reps: reps.map((r) => r.pps.syncwall.floodPps / r.capacity.decidedPerSec), target: { op: '>=', value: 10, on: 'value' },
    note: 'the issue floods at 10x the controller capacity; this is what the generator reached',
  });

  const sum = (f: (r: Rep) => number): number => reps.reduce((n, r) => n + f(r), 0);
  const limiter = { section, subject: 'syncwall', unit: 'punts/s', better: 'higher' } as const;
  report.add({ ...limiter, name: 'punts passed by the limiter (punt_new)', reps: reps.map((r) => r.limiter.passedPerSec) });
  report.add({ ...limiter, name: 'punts dropped by the limiter (drop_punt_limit)', reps: reps.map((r) => r.limiter.droppedPerSec) });
  report.add({
    ...limiter, name: 'punts decided by the controller', reps: reps.map((r) => r.limiter.decidedPerSec),
    note: `over all windows: ${sum((r) => r.limiter.ringFull)} punt ring full, ${sum((r) => r.limiter.stale)} stale, ${sum((r) => r.limiter.tableFull)} table full`,
  });

  const cpu = { section, subject: 'syncwalld', unit: 'cores', better: 'lower' } as const;
  report.add({ ...cpu, name: 'controller CPU, no flood', reps: reps.map((r) => r.cpu.calm), signed: true, note: 'an idle daemon may use no measurable CPU (10 ms ticks)' });
  report.add({ ...cpu, name: 'controller CPU, during flood', reps: reps.map((r) => r.cpu.flood), note: 'utime + stime of all its threads over the established window' });

  const failures = reps.flatMap((r) => [...r.cli.calm.failures, ...r.cli.flood.failures]);
  const answers = { section, unit: 'ms', better: 'lower' } as const;
  const calls = `status and stats in turn, one every ${CLI_INTERVAL_MS} ms, in a window of their own; ${failures.length} failed${failures[0] ? ` (${failures[0]})` : ''}`;
  for (const [subject, pick, how] of [
    ['syncwall CLI', (t: CliTimes) => t.cliMs, 'each a new Node process'],
    ['management API', (t: CliTimes) => t.rpcMs, 'the same calls from the benchmark process: the daemon\'s own answer'],
  ] as const) {
    report.add({ ...answers, subject, name: 'answer time p50, no flood', reps: reps.map((r) => median(pick(r.cli.calm))) });
    report.add({
      ...answers, subject, name: 'answer time p50, during flood', reps: reps.map((r) => median(pick(r.cli.flood))),
      peer: subject, peerName: 'answer time p50, no flood', note: `${calls}; ${how}`,
    });
    report.add({ ...answers, subject, name: 'answer time max, during flood', reps: reps.map((r) => Math.max(...pick(r.cli.flood))) });
  }
}

/** Runs the SYN flood measurements, adding figures to the report; the lab is always removed. */
export async function synFlood(report: Report, plan: SynFloodPlan, log: (line: string) => void): Promise<void> {
  const reps = await inLab(floodTopology(), log, async (lab) => {
    log(`syn flood ${lab.prefix}: lab built`);
    await startUdpEcho(lab, 'srv', BENCH_PORTS.udp);
    await startIperfServer(lab);
    const measured: Rep[] = [];
    for (let rep = 0; rep < plan.reps; rep++) {
      log(`syn flood ${lab.prefix}: repetition ${rep + 1} of ${plan.reps}`);
      measured.push(await measureRep(lab, plan, log));
    }
    return measured;
  });
  addFigures(report, reps);
}
