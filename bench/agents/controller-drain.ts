// Item 4, the controller's own ceiling (bench/controller-ceiling.ts runs
// this in a lab namespace): first-packet decisions + inserts + re-injections
// per second through the real controller path, with synthetic punts. Each
// round runs N distinct TCP SYNs through the real XDP object with
// BPF_PROG_TEST_RUN, which writes N real punt records into the real punt
// ring while the controller cannot run; then a real Engine drains it (ring
// consumer → rule decision → NOEXIST inserts → re-injection through
// FrameInjector in live-frames mode → the re-injected SYN's state event from
// the event ring), and the time until all N are re-injected is the round's.
// The rules and settings are those of examples/syncwall.yaml; the expiry
// sweeper is left out (its interval is longer than the run). Needs root and
// `make build`.
//
// Run it in a network namespace of its own: punts and re-injections use that
// namespace's loopback (ifindex 1), where a re-injected SYN to a non-local
// address is dropped after routing, so the figure excludes forwarding.
//
//   node --import tsx bench/agents/controller-drain.ts [--punts N] [--rounds R] [--json] [--profile FILE]
//
// A first, unmeasured round warms the JIT. --json prints one line:
// { punts, rounds: [{ perSec, cpuUsPerPunt }] }. --profile profiles the
// measured drains (not the filling of the ring), writes the last one's CPU
// profile to FILE and prints the functions with the most self time.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { progTestRunInPlace } from '../../control/src/bpf/libbpf.js';
import { loadConfig } from '../../control/src/config/load.js';
import { Engine } from '../../control/src/engine/engine.js';
import { MapName, ProgName } from '../../control/src/gen/layout.js';
import { createLogger } from '../../control/src/log.js';
import { buildFrame } from '../../control/src/net/packet.js';
import { RulesHolder } from '../../control/src/engine/rules-holder.js';
import { LOOPBACK_IFINDEX, TestDataplane } from '../../test/bpf/harness.js';
import { REPO_ROOT } from '../../test/lab/paths.js';

const { values: args } = parseArgs({
  options: {
    punts: { type: 'string', default: '50000' },
    rounds: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});
const punts = Number(args.punts);
const rounds = Number(args.rounds);
if (!Number.isInteger(punts) || punts < 1000 || punts > 1 << 20) throw new Error(`--punts ${args.punts}: must be an integer in [1000, 2^20]`);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${args.rounds}: must be a positive integer`);

const CONFIG = join(REPO_ROOT, 'examples/syncwall.yaml');
/** The zone examples/rules.conf accepts web traffic from; the loopback gets it. */
const INGRESS_ZONE = 'inside';
/** Bytes a punt record of a SYN takes in the ring, rounded up generously. */
const PUNT_RECORD_BOUND = 256;
const EVENT_RECORD_BOUND = 128;
/** Longer than any run: every queued punt is decided, none is dropped as stale. */
const MAX_PUNT_AGE_MS = 600_000;
/** Longest a round may take before the run is declared stuck. */
const ROUND_TIMEOUT_MS = 60_000;
/** Records per ring wakeup, as syncwalld runs (control/src/daemon/run.ts). */
const RING_BUDGET = 4096;

const pow2AtLeast = (n: number): number => 2 ** Math.ceil(Math.log2(n));

/**
 * The SYN of flow i: distinct sources (10.64.0.0/10, ports 1024-65535) to a
 * web server that examples/rules.conf accepts from zone inside.
 */
function synFrame(i: number): Uint8Array {
  const host = Math.floor(i / 64_000);
  const src = `10.${64 + (host >>> 16)}.${(host >>> 8) & 255}.${host & 255}`;
  return buildFrame({
    ip: { version: 4, src, dst: '198.18.0.80' },
    l4: { proto: 'tcp', sport: 1024 + (i % 64_000), dport: 80, seq: i, flags: 'S', window: 64240, options: [{ kind: 'mss', value: 1460 }] },
  });
}

interface Round {
  perSec: number;
  cpuUsPerPunt: number;
}

const config = loadConfig(CONFIG);
const totalFlows = (rounds + 1) * punts;
const dp = TestDataplane.load({
  connEntries: pow2AtLeast(totalFlows),
  puntRate: 1n << 40n,
  puntBurst: 1n << 40n,
  puntRingSize: pow2AtLeast(punts * PUNT_RECORD_BOUND),
  eventRingSize: pow2AtLeast(punts * EVENT_RECORD_BOUND),
});
const { obj } = dp;
const engine = new Engine(
  {
    interfaces: [{ name: 'lo', zone: INGRESS_ZONE, ifindex: LOOPBACK_IFINDEX }],
    mainProgFd: dp.progFd,
    releaseProgFd: obj.programFd(ProgName.xdp_syncwall_release),
    txProgFd: obj.programFd(ProgName.xdp_tx_out),
    connsFd: obj.mapFd(MapName.sw_conns),
    countersFd: obj.mapFd(MapName.sw_counters),
    puntRingFd: obj.mapFd(MapName.sw_punt_ring),
    puntRingSize: obj.mapMaxEntries(MapName.sw_punt_ring),
    eventRingFd: obj.mapFd(MapName.sw_event_ring),
    eventRingSize: obj.mapMaxEntries(MapName.sw_event_ring),
    capacity: pow2AtLeast(totalFlows),
  },
  new RulesHolder(config.rules),
  {
    nodeId: 0,
    rulesFile: config.rules,
    xdpMode: 'test-run',
    timeouts: config.timeouts,
    sweepIntervalMs: 3_600_000,
    sweepChunk: config.expiry.batch,
    ringBudget: RING_BUDGET,
    maxPuntAgeMs: MAX_PUNT_AGE_MS,
    helpers: config.helpers,
    version: 'bench',
  },
  createLogger('warn'),
);

// struct xdp_md: data_end at 4 (the frame's length), ingress_ifindex at 12
const xdpMd = new DataView(new ArrayBuffer(24));
xdpMd.setUint32(12, LOOPBACK_IFINDEX, true);

/** Punts N new flows (flow numbers from `first`) into the ring while the engine cannot run. */
function punt(first: number): void {
  for (let i = first; i < first + punts; i++) {
    const frame = synFrame(i);
    xdpMd.setUint32(4, frame.length, true);
    progTestRunInPlace(dp.progFd, frame, new Uint8Array(xdpMd.buffer), 0);
  }
  const c = dp.counters();
  if ((c.CNT_DROP_PUNT_RING_FULL ?? 0) > 0 || (c.CNT_DROP_PUNT_LIMIT ?? 0) > 0) throw new Error(`punts were dropped while filling the ring: ${JSON.stringify(c)}`);
}

/** Resolves once the engine has re-injected `target` first packets and taken their state events. */
function drained(target: number): Promise<void> {
  const stats = engine.counters;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const handled = stats.get('reinjected') + stats.get('reinject_errors') + stats.get('insert_errors') + stats.get('table_full');
      if (handled >= target && stats.get('state_events') >= stats.get('reinjected')) return resolve();
      if (Date.now() - started > ROUND_TIMEOUT_MS) return reject(new Error(`round stuck after ${ROUND_TIMEOUT_MS} ms: ${counterJson()}`));
      setTimeout(check, 1);
    };
    check();
  });
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  samples?: number[];
  timeDeltas?: number[];
}

/** A CPU profile of the drains only (a node:inspector session: --cpu-prof breaks BPF program loading). */
class DrainProfiler {
  private readonly session = new Session();
  /** Microseconds of self time per function, over every profiled drain. */
  readonly selfUs = new Map<string, number>();
  last: CpuProfile | undefined;

  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
  }

  async around<T>(fn: () => Promise<T>): Promise<T> {
    await this.session.post('Profiler.start');
    const result = await fn();
    const { profile } = await this.session.post('Profiler.stop');
    this.add(profile);
    this.last = profile;
    return result;
  }

  private add(profile: CpuProfile): void {
    const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
    const parentOf = new Map(profile.nodes.flatMap((node) => (node.children ?? []).map((child) => [child, node.id] as const)));
    const label = (id: number): string => {
      const { functionName, url } = byNode.get(id)!.callFrame;
      return `${functionName || '(anonymous)'} ${url.replace(/^.*\/(control|bench|test|node_modules)\//, '$1/')}`.trim();
    };
    // The first sample's time runs from Profiler.start, not from work of the drain.
    profile.samples?.forEach((id, i) => {
      if (i === 0) return;
      // Native code (a koffi call: its name is not reliable) is named by its JS caller.
      const { functionName, url } = byNode.get(id)!.callFrame;
      const parent = parentOf.get(id);
      const native = url === '' && !functionName.startsWith('(') && parent !== undefined;
      const name = native ? `native, called from ${label(parent)}` : label(id);
      this.selfUs.set(name, (this.selfUs.get(name) ?? 0) + (profile.timeDeltas?.[i] ?? 0));
    });
  }

  /** The n functions with the most self time, as percentages of all samples. */
  top(n: number): string[] {
    const total = [...this.selfUs.values()].reduce((a, b) => a + b, 0);
    return [...this.selfUs].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
  }

  stop(): void {
    this.session.disconnect();
  }
}

async function round(index: number, profiler?: DrainProfiler): Promise<Round> {
  punt(index * punts);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const drain = (): Promise<void> => drained((index + 1) * punts);
  await (profiler ? profiler.around(drain) : drain());
  const wallNs = Number(process.hrtime.bigint() - start);
  const used = process.cpuUsage(cpu);
  return { perSec: (punts / wallNs) * 1e9, cpuUsPerPunt: (used.user + used.system) / punts };
}

const counterJson = (): string => JSON.stringify(engine.counters.snapshot(), (_, v) => (typeof v === 'bigint' ? Number(v) : v));

async function main(): Promise<void> {
  engine.start();
  const profiler = args.profile ? new DrainProfiler() : undefined;
  try {
    await round(0);
    await profiler?.start();
    const results: Round[] = [];
    for (let r = 1; r <= rounds; r++) results.push(await round(r, profiler));
    if (profiler) {
      writeFileSync(args.profile!, JSON.stringify(profiler.last));
      process.stderr.write(`self time while draining (all measured rounds; the last round's profile is in ${args.profile}):\n${profiler.top(25).join('\n')}\n`);
    }
    if (engine.counters.get('punts_accepted') !== (rounds + 1) * punts) throw new Error(`expected every punt accepted, counters: ${counterJson()}`);
    if (args.json) console.log(JSON.stringify({ punts, rounds: results }));
    else for (const r of results) console.log(`${punts} punts: ${Math.round(r.perSec)} decided+inserted+re-injected/s, ${r.cpuUsPerPunt.toFixed(2)} µs CPU per punt`);
  } finally {
    profiler?.stop();
    await engine.stop();
    dp.close();
  }
}

await main();
