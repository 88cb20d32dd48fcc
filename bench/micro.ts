// The micro-benchmarks that need no lab: runs the scripts their owners keep
// in bench/ as subprocesses (each in a fresh process, so one's JIT state or
// leftover maps cannot colour the next) and turns their reports into figures.
import { join } from 'node:path';
import { REPO_ROOT } from '../test/lab/paths.js';
import { runChecked } from '../test/lab/processes.js';
import { CONNTRACKD_SUBJECT } from './conntrackd-sync.js';
import type { Report } from './lib/report.js';
import { referenceCost } from './xdp-ref.js';

export class ReportFormatError extends Error {
  constructor(script: string, what: string, output: string) {
    super(`${script}: no ${what} in its output:\n${output}`);
    this.name = 'ReportFormatError';
  }
}

async function runScript(script: string, args: readonly string[], timeoutMs: number): Promise<string> {
  const r = await runChecked(['node', '--import', 'tsx', join(REPO_ROOT, 'bench', script), ...args], { cwd: REPO_ROOT, timeoutMs });
  return r.stdout;
}

/** One line of `rules-bench.ts --json`. */
interface RulesBenchRow {
  rules: number;
  decisionsPerSec: number;
  parseMs: number;
  compileMs: number;
  matcherBytes: number;
}

/**
 * Item 5: decisions/s of the compiled matcher with 10, 1k and 10k rules;
 * for 10k also the CPU time to parse and compile them and the heap the
 * compiled matcher keeps.
 */
export async function ruleScaling(report: Report, opts: { quick: boolean; reps: number }): Promise<void> {
  const bySize = new Map<number, RulesBenchRow[]>();
  for (let i = 0; i < opts.reps; i++) {
    const out = await runScript('rules-bench.ts', ['--json', ...(opts.quick ? ['--quick'] : [])], 300_000);
    const rows = out.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as RulesBenchRow);
    if (rows.length === 0) throw new ReportFormatError('rules-bench.ts', 'JSON rows', out);
    for (const row of rows) bySize.set(row.rules, [...(bySize.get(row.rules) ?? []), row]);
  }
  const section = '5 rules';
  for (const [count, rows] of bySize) {
    const subject = `${count} rules`;
    report.add({
      section, name: 'first-packet decisions', subject, unit: 'decisions/s', better: 'higher',
      reps: rows.map((r) => r.decisionsPerSec),
      ...(count === 10 ? {} : { peer: '10 rules' }),
      ...(count === 10_000 ? { target: { op: '>=', value: 0.5 } as const } : {}),
    });
    if (count !== 10_000) continue;
    report.add({ section, name: 'parse rules (CPU)', subject, unit: 'ms', better: 'lower', reps: rows.map((r) => r.parseMs) });
    report.add({ section, name: 'compile matcher (CPU)', subject, unit: 'ms', better: 'lower', reps: rows.map((r) => r.compileMs) });
    report.add({ section, name: 'compiled matcher heap', subject, unit: 'MB', better: 'lower', reps: rows.map((r) => r.matcherBytes / 2 ** 20) });
  }
}

/** Ring-buffer drain: records/s with synchronous consume() and with poll + budget. */
export async function ringbufDrain(report: Report, reps: number): Promise<void> {
  const sync: number[] = [];
  const polled: number[] = [];
  const p99: number[] = [];
  for (let i = 0; i < reps; i++) {
    const out = await runScript('ringbuf-bench.ts', [], 120_000);
    const s = /consume\(\) loop: ([\d.]+) M records\/s/.exec(out);
    const p = /poll \+ budget \d+: ([\d.]+) M records\/s/.exec(out);
    const held = /p99 ([\d.]+) ms/.exec(out);
    if (!s || !p || !held) throw new ReportFormatError('ringbuf-bench.ts', 'drain rates', out);
    sync.push(Number(s[1]) * 1e6);
    polled.push(Number(p[1]) * 1e6);
    p99.push(Number(held[1]) * 1e3);
  }
  const common = { section: '- ringbuf', better: 'higher' as const, unit: 'events/s' };
  report.add({ ...common, name: 'punt ring drain', subject: 'consume() loop', reps: sync });
  report.add({ ...common, name: 'punt ring drain', subject: 'poll + budget', reps: polled, peer: 'consume() loop' });
  report.add({ section: '- ringbuf', name: 'event loop held while draining, p99', subject: 'poll + budget', unit: 'µs', better: 'lower', reps: p99 });
}

/** One line of `xdp-cost.ts --json`. */
interface XdpCostRun {
  bareNs: number;
  fills: { entries: number; tcpHitNs: number; udpHitNs: number; invalidNs: number; puntNs: number }[];
}

/** "1k entries", "100k entries", "1M entries". */
const entriesLabel = (n: number): string => `${n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : n} entries`;

/**
 * Item 1: ns/packet of the data plane's paths (xdp-cost.ts) and of the
 * reference program, each with its table holding 1k, 100k and 1M entries
 * (quick: 1k), next to a bare XDP_PASS. Syncwall's hits are compared with
 * the reference at the same fill.
 */
export async function xdpCost(report: Report, opts: { quick: boolean; reps: number }): Promise<void> {
  const repeat = opts.quick ? 200_000 : 1_000_000;
  const fills = opts.quick ? [1_000] : [1_000, 100_000, 1_000_000];
  const runs: XdpCostRun[] = [];
  const ref = new Map<number, { tcp: number[]; udp: number[] }>(fills.map((n) => [n, { tcp: [], udp: [] }]));
  for (let i = 0; i < opts.reps; i++) {
    const out = await runScript('xdp-cost.ts', ['--json', '--repeat', String(repeat), '--fills', fills.join(',')], 300_000);
    try {
      runs.push(JSON.parse(out.trim().split('\n').pop()!));
    } catch {
      throw new ReportFormatError('xdp-cost.ts', 'JSON result', out);
    }
    for (const n of fills) {
      const r = referenceCost(n, repeat);
      ref.get(n)!.tcp.push(r.tcpHitNs);
      ref.get(n)!.udp.push(r.udpHitNs);
    }
  }
  const ns = { section: '1 xdp cost', unit: 'ns/pkt', better: 'lower' } as const;
  const vsBare = { peer: 'xdp_pass', peerName: 'bare XDP_PASS' } as const;
  const at = (n: number): XdpCostRun['fills'][number][] =>
    runs.map((r) => {
      const f = r.fills.find((x) => x.entries === n);
      if (!f) throw new ReportFormatError('xdp-cost.ts', `${n}-entry fill`, JSON.stringify(r));
      return f;
    });
  report.add({ ...ns, name: 'bare XDP_PASS', subject: 'xdp_pass', reps: runs.map((r) => r.bareNs) });
  for (const n of fills) {
    const fill = at(n);
    for (const [name, field, refs] of [['established TCP hit', 'tcpHitNs', 'tcp'], ['established UDP hit', 'udpHitNs', 'udp']] as const) {
      const named = `${name}, ${entriesLabel(n)}`;
      report.add({
        ...ns, name: named, subject: 'syncwall', reps: fill.map((f) => f[field]), peer: 'reference',
        ...(field === 'tcpHitNs' ? { target: { op: '<=', value: 1.5 } as const } : {}),
        note: 'fast forwarding off, so no fib lookup',
      });
      report.add({ ...ns, name: named, subject: 'reference', reps: ref.get(n)![refs], ...vsBare });
    }
    report.add({ ...ns, name: `out-of-window drop, ${entriesLabel(n)}`, subject: 'syncwall', reps: fill.map((f) => f.invalidNs), ...vsBare });
    report.add({ ...ns, name: `new-flow punt (ring not drained), ${entriesLabel(n)}`, subject: 'syncwall', reps: fill.map((f) => f.puntNs), ...vsBare });
  }
}

/** The burst of item 6, for syncwall and conntrackd alike, so their rows pair up. */
export const syncBurstSize = (quick: boolean): number => (quick ? 1000 : 10_000);

/**
 * Item 6: on-demand sync between two in-process nodes (bench/sync-latency.ts),
 * each row against conntrackd FTFW's (bench/conntrackd-sync.ts) where it has one.
 */
export async function syncLatency(report: Report, opts: { quick: boolean; reps: number }): Promise<void> {
  const burst = syncBurstSize(opts.quick);
  const runs: { spaced: { p50Us: number; p99Us: number }; burst: { p50Us: number; p99Us: number; entriesPerSec: number }; cpuUsPerEntry: number; wireBytesPerEntry: number }[] = [];
  for (let i = 0; i < opts.reps; i++) {
    const out = await runScript('sync-latency.ts', ['--json', '--burst', String(burst), '--spaced', opts.quick ? '50' : '200'], 300_000);
    try {
      runs.push(JSON.parse(out.trim().split('\n').pop()!));
    } catch {
      throw new ReportFormatError('sync-latency.ts', 'JSON result', out);
    }
  }
  const s = '6 sync';
  const target = (value: number) => ({ target: { op: '<=' as const, value, on: 'value' as const } });
  const ct = CONNTRACKD_SUBJECT;
  report.add({ section: s, name: 'created on owner → in backup map, p50', subject: 'spaced flows', unit: 'µs', better: 'lower', reps: runs.map((r) => r.spaced.p50Us) });
  report.add({ section: s, name: 'created on owner → in backup map, p99', subject: 'spaced flows', unit: 'µs', better: 'lower', reps: runs.map((r) => r.spaced.p99Us), peer: ct.spaced, ...target(1000) });
  report.add({ section: s, name: 'created on owner → in backup map, p50', subject: `burst of ${burst}`, unit: 'µs', better: 'lower', reps: runs.map((r) => r.burst.p50Us) });
  report.add({ section: s, name: 'created on owner → in backup map, p99', subject: `burst of ${burst}`, unit: 'µs', better: 'lower', reps: runs.map((r) => r.burst.p99Us), peer: ct.burst(burst), ...target(1000) });
  report.add({ section: s, name: 'replicated entries/s (sender + receiver in one process)', subject: 'syncwall', unit: 'entries/s', better: 'higher', reps: runs.map((r) => r.burst.entriesPerSec), peer: ct.total, peerName: 'replicated entries/s (burst, two namespaces)' });
  // What one core sustains: the issue's comparison (conntrackd ≈ 83k/s at 12 µs per event), held
  // against conntrackd's cheapest mode, the external cache that the issue's figure matches.
  report.add({ section: s, name: 'replicated entries/s per core', subject: 'syncwall', unit: 'entries/s', better: 'higher', reps: runs.map((r) => 1e6 / r.cpuUsPerEntry), peer: ct.externalCache, target: { op: '>=', value: 5 }, note: '1 s / CPU per entry' });
  report.add({ section: s, name: 'CPU per replicated entry', subject: 'syncwall', unit: 'µs', better: 'lower', reps: runs.map((r) => r.cpuUsPerEntry), peer: ct.total });
  report.add({ section: s, name: 'wire bytes per entry', subject: 'syncwall', unit: 'B', better: 'lower', reps: runs.map((r) => r.wireBytesPerEntry), peer: ct.total });
}
