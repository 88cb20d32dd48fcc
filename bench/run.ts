// `make bench` / `make bench-quick`: runs every measurement, each a few
// times, and prints one table of medians, spreads and ratios to the peer
// measured in the same run; writes every raw figure to a JSON file.
// --check (the smoke test in `make test`) fails unless every figure is a
// finite, non-zero number and nothing failed to run; it never judges speed.
//
//   node --import tsx bench/run.ts [--quick] [--check] [--out FILE] [--only xdp,rules,lab,...]
//
// The JSON goes to build/bench/results.json (quick: results-quick.json, so
// the smoke test in `make test` never overwrites a full run's figures).
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release } from 'node:os';
import { parseArgs } from 'node:util';
import { conntrackdSync } from './conntrackd-sync.js';
import { clusterConnRate } from './cluster-conn-rate.js';
import { clusterScale } from './cluster-scale.js';
import { conntrackMemory } from './conntrack-memory.js';
import { controllerCeiling } from './controller-ceiling.js';
import { failover } from './failover.js';
import { labSuite, type LabPlan } from './lab-suite.js';
import { Report } from './lib/report.js';
import { synFlood } from './syn-flood.js';
import { ringbufDrain, ruleScaling, syncBurstSize, syncLatency, xdpCost } from './micro.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    check: { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string' },
  },
});
const quick = values.quick;
const out = values.out ?? (quick ? 'build/bench/results-quick.json' : 'build/bench/results.json');

const labPlan: LabPlan = quick
  ? { reps: 1, flows: 256, ppsMs: 1000, bulkSeconds: 2, connRate: { count: 30_000, concurrency: 64, durationMs: 1500 }, latencyConns: 200 }
  : { reps: 5, flows: 1024, ppsMs: 3000, bulkSeconds: 5, connRate: { count: 30_000, concurrency: 64, durationMs: 3000 }, latencyConns: 1000 };
const microReps = quick ? 1 : 3;

function version(argv: string[]): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

const report = new Report({
  mode: quick ? 'quick' : 'full',
  kernel: release(),
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
  node: process.version,
  clang: version(['clang', '--version']),
  nftables: version(['nft', '--version']),
  iperf3: version(['iperf3', '--version']),
  trafgen: version(['trafgen', '--version']),
  conntrackd: version(['conntrackd', '-v']),
  labPlan,
  microReps,
  // Other work on the machine moves every figure; say how busy it was.
  loadAverageAtStart: loadavg(),
});
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const started = Date.now();

async function step(section: string, fn: () => Promise<void>): Promise<void> {
  log(`bench: ${section}`);
  try {
    await fn();
  } catch (err) {
    report.problem(section, err);
    log(`bench: ${section} failed: ${err instanceof Error ? err.stack : String(err)}`);
  }
}

// Each part of the suite, in the order it runs; --only takes these keys.
// A part adds its figures to the report; one that throws is reported as not
// measured and the run goes on. `scale` runs last: the kernel is still
// freeing its million conntrack entries and map elements for a while after
// it, and a SYN flood started then failed (trafgen: TX_RING flush EAGAIN).
const PARTS: { key: string; title: string; run: () => Promise<void> }[] = [
  { key: 'xdp', title: '1 xdp cost', run: () => xdpCost(report, { quick, reps: microReps }) },
  { key: 'rules', title: '5 rules', run: () => ruleScaling(report, { quick, reps: microReps }) },
  { key: 'ringbuf', title: '- ringbuf', run: () => ringbufDrain(report, microReps) },
  { key: 'ceiling', title: '4 controller ceiling', run: () => controllerCeiling(report, { quick, reps: microReps }) },
  { key: 'sync', title: '6 sync', run: () => syncLatency(report, { quick, reps: microReps }) },
  { key: 'ctsync', title: '6 sync conntrackd', run: () => conntrackdSync(report, { quick, reps: microReps, burst: syncBurstSize(quick) }) },
  { key: 'lab', title: '2-4 lab', run: () => labSuite(report, labPlan, log) },
  { key: 'failover', title: '7 failover', run: () => failover(report, quick ? { conns: 200, reps: 1 } : { conns: 1000, reps: 3 }, log) },
  {
    key: 'connrate2',
    title: '4 conn rate, 2-node cluster',
    run: () => clusterConnRate(report, quick
      ? { reps: 1, rate: { count: 30_000, concurrency: 64, durationMs: 1500 }, latencyConns: 200 }
      : { reps: 3, rate: { count: 30_000, concurrency: 64, durationMs: 3000 }, latencyConns: 1000 }, log),
  },
  {
    key: 'synflood',
    title: '9 syn flood',
    run: () => synFlood(report, quick ? { reps: 1, flows: 256, windowMs: 1000 } : { reps: 3, flows: 1024, windowMs: 2000 }, log),
  },
  {
    key: 'scale',
    title: '8/10 scale',
    run: async () => {
      const entries = quick ? 20_000 : 1_000_000;
      await step('8 memory: conntrack, conntrackd', () => conntrackMemory(report, { entries, timeoutMs: quick ? 30_000 : 120_000 }, log));
      await clusterScale(report, { entries, settleMs: quick ? 30_000 : 240_000 }, log);
    },
  },
];
const only = new Set(values.only ? values.only.split(',') : PARTS.map((p) => p.key));
const unknown = [...only].filter((k) => !PARTS.some((p) => p.key === k));
if (unknown.length > 0) {
  log(`bench: --only: unknown part(s) ${unknown.join(', ')}; the parts are ${PARTS.map((p) => p.key).join(', ')}`);
  process.exit(2);
}
for (const part of PARTS) if (only.has(part.key)) await step(part.title, part.run);

report.resolveRatios();
report.meta.loadAverageAtEnd = loadavg();
report.write(out);
process.stdout.write(`\n${report.table()}\n\nraw figures: ${out}  (${((Date.now() - started) / 1000).toFixed(0)} s; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")})\n`);

if (values.check) {
  const invalid = report.invalid();
  for (const f of invalid) log(`bench --check: ${f.section} / ${f.name} / ${f.subject}: no valid number (${f.value.median})`);
  for (const p of report.problems) log(`bench --check: ${p.section} was not measured: ${p.message}`);
  if (invalid.length > 0 || report.problems.length > 0 || report.figures.length === 0) process.exitCode = 1;
}
