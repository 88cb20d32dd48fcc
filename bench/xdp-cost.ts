// Per-packet cost of the data plane's main paths with its connection table
// holding 1k, 100k or 1M entries, next to a bare XDP_PASS program, measured
// with BPF_PROG_TEST_RUN (the kernel's average ns per run over `repeat`
// runs). Needs root and `make build`.
//
//   node --import tsx bench/xdp-cost.ts [--repeat N] [--fills 1000,100000,1000000] [--json]
//
// Each fill is a fresh load of the object with sw_conns sized to exactly that
// many entries (as bench/xdp-ref.ts sizes the reference's table): the
// measured TCP and UDP flows plus fillers (lib/flow-fill.ts) that no frame
// matches. --json prints one line: { bareNs, fills: [{ entries, tcpHitNs,
// udpHitNs, invalidNs, puntNs }] } (what bench/micro.ts reads).
//
// The data plane runs with fast forwarding off: an accepted packet ends in
// XDP_PASS after tracking, so the numbers are parse + lookup + tracking +
// counters; bpf_fib_lookup and the redirect come on top on a router.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BpfObject, progTestRun } from '../control/src/bpf/libbpf.js';
import { MapName } from '../control/src/gen/layout.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../control/src/net/protocols.js';
import { normalizedKey, TestDataplane, VERDICT_NAMES } from '../test/bpf/harness.js';
import { CLIENT4, frame, SERVER4 } from '../test/bpf/packets.js';
import { fillFlowTable } from './lib/flow-fill.js';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { values: args } = parseArgs({
  options: {
    repeat: { type: 'string', default: '1000000' },
    fills: { type: 'string', default: '1000,100000,1000000' },
    json: { type: 'boolean', default: false },
  },
});
const repeat = Number(args.repeat);
if (!Number.isInteger(repeat) || repeat < 100_000) throw new Error(`--repeat ${args.repeat}: must be an integer >= 100000 (each call costs ~17 ms of setup)`);
const fills = args.fills.split(',').map(Number);
for (const n of fills) if (!Number.isInteger(n) || n < 2 || n >= 1 << 24) throw new Error(`--fills ${args.fills}: each fill must be an integer in [2, 2^24)`);
/** Punts are not consumed while measuring: the ring must hold them all. */
const PUNT_REPEAT = 100_000;
const PUNT_RING = 64 << 20;
/** The measured flows (one TCP, one UDP) count towards the fill. */
const MEASURED_FLOWS = 2;

interface Cost {
  ns: number;
  verdict: string;
}

interface FillCost {
  entries: number;
  tcpHit: Cost;
  udpHit: Cost;
  invalid: Cost;
  punt: Cost;
}

/** The best of `rounds` calls: a 2-vCPU VM is noisy, the minimum is the program's cost. */
function measure(progFd: number, data: Uint8Array, n: number, rounds = 3): Cost {
  let best = Infinity;
  let retval = -1;
  for (let i = 0; i < rounds; i++) {
    const r = progTestRun(progFd, { data, repeat: n });
    best = Math.min(best, r.durationNs);
    retval = r.retval;
  }
  return { ns: best, verdict: VERDICT_NAMES[retval] ?? String(retval) };
}

const tcpSegment = frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1001, ack: 5001, flags: 'PA', payload: new Uint8Array(100) });
const udpQuery = frame(4, true, { proto: 'udp', sport: 5300, dport: 53, payload: new Uint8Array(40) });
const outOfWindow = frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1001 + 50_000_000, ack: 5001, flags: 'PA', payload: new Uint8Array(100) });
const newFlowSyn = frame(4, true, { proto: 'tcp', sport: 40001, dport: 80, seq: 1, flags: 'S', window: 64240, options: [{ kind: 'mss', value: 1460 }, { kind: 'wscale', shift: 7 }] });

function bareCost(): Cost {
  const bare = BpfObject.open(resolve(REPO, 'build/xdp_pass.bpf.o'));
  try {
    bare.load();
    return measure(bare.programFd('xdp_pass'), tcpSegment, repeat);
  } finally {
    bare.close();
  }
}

/** The four paths with sw_conns holding `entries` entries. */
function fillCost(entries: number): FillCost {
  const dp = TestDataplane.load({ connEntries: entries, puntRate: 1n << 30n, puntBurst: 1n << 30n, puntRingSize: PUNT_RING });
  try {
    fillFlowTable(dp.obj.mapFd(MapName.sw_conns), entries - MEASURED_FLOWS);
    // an established TCP flow, set up by its real handshake
    const tcp = normalizedKey({ family: 4, proto: IPPROTO_TCP, src: CLIENT4, sport: 40000, dst: SERVER4, dport: 80 });
    dp.admit(tcp.key, tcp.srcIsA);
    dp.run(frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1000, flags: 'S', window: 64240 }));
    dp.run(frame(4, false, { proto: 'tcp', sport: 80, dport: 40000, seq: 5000, ack: 1001, flags: 'SA', window: 65160 }));
    dp.run(frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1001, ack: 5001, flags: 'A', window: 502 }));
    const tcpHit = measure(dp.progFd, tcpSegment, repeat);

    const udp = normalizedKey({ family: 4, proto: IPPROTO_UDP, src: CLIENT4, sport: 5300, dst: SERVER4, dport: 53 });
    dp.admit(udp.key, udp.srcIsA);
    dp.run(udpQuery);
    const udpHit = measure(dp.progFd, udpQuery, repeat);

    const invalid = measure(dp.progFd, outOfWindow, repeat);
    const punt = measure(dp.progFd, newFlowSyn, PUNT_REPEAT, 1);
    const counters = dp.counters();
    if ((counters.CNT_DROP_PUNT_RING_FULL ?? 0) > 0 || (counters.CNT_DROP_PUNT_LIMIT ?? 0) > 0)
      throw new Error(`${entries} entries: punts were dropped while measuring: ${JSON.stringify(counters)}`);
    return { entries, tcpHit, udpHit, invalid, punt };
  } finally {
    dp.close();
  }
}

function main(): void {
  const bare = bareCost();
  const results = fills.map(fillCost);
  if (args.json) {
    const fillsOut = results.map((r) => ({ entries: r.entries, tcpHitNs: r.tcpHit.ns, udpHitNs: r.udpHit.ns, invalidNs: r.invalid.ns, puntNs: r.punt.ns }));
    console.log(JSON.stringify({ bareNs: bare.ns, fills: fillsOut }));
    return;
  }
  const rows: [string, Cost][] = [['bare XDP_PASS program', bare]];
  for (const r of results) {
    rows.push(
      [`${r.entries} entries: established TCP hit (100-byte segment)`, r.tcpHit],
      [`${r.entries} entries: UDP hit`, r.udpHit],
      [`${r.entries} entries: out-of-window drop`, r.invalid],
      [`${r.entries} entries: punt (SYN, ${PUNT_REPEAT} runs, ring not drained)`, r.punt],
    );
  }
  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, r] of rows) console.log(`${name.padEnd(width)}  ${String(r.ns).padStart(5)} ns/packet  ${r.verdict}`);
}

main();
