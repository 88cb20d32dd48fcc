// Per-packet cost of the data plane's main paths next to a bare XDP_PASS
// program, measured with BPF_PROG_TEST_RUN (the kernel's average ns per run
// over `repeat` runs). Needs root and `make bpf`.
//
//   node --import tsx bench/xdp-cost.ts [repeat]
//
// The data plane runs with fast forwarding off: an accepted packet ends in
// XDP_PASS after tracking, so the numbers are parse + lookup + tracking +
// counters; bpf_fib_lookup and the redirect come on top on a router.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfObject, progTestRun } from '../control/src/bpf/libbpf.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../control/src/net/protocols.js';
import { normalizedKey, TestDataplane, VERDICT_NAMES } from '../test/bpf/harness.js';
import { CLIENT4, frame, SERVER4 } from '../test/bpf/packets.js';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
const repeat = Number(process.argv[2] ?? 1_000_000);
if (!Number.isInteger(repeat) || repeat < 100_000) throw new Error('repeat must be an integer >= 100000 (each call costs ~17 ms of setup)');
/** Punts are not consumed while measuring: the ring must hold them all. */
const PUNT_REPEAT = 100_000;
const PUNT_RING = 64 << 20;

/** The best of `rounds` calls: a 2-vCPU VM is noisy, the minimum is the program's cost. */
function measure(progFd: number, data: Uint8Array, n: number, rounds = 3): { ns: number; verdict: string } {
  let best = Infinity;
  let retval = -1;
  for (let i = 0; i < rounds; i++) {
    const r = progTestRun(progFd, { data, repeat: n });
    best = Math.min(best, r.durationNs);
    retval = r.retval;
  }
  return { ns: best, verdict: VERDICT_NAMES[retval] ?? String(retval) };
}

function main(): void {
  const rows: [string, { ns: number; verdict: string }][] = [];

  const bare = BpfObject.open(resolve(REPO, 'build/xdp_pass.bpf.o'));
  bare.load();
  const pkt = frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1001, ack: 5001, flags: 'PA', payload: new Uint8Array(100) });
  rows.push(['bare XDP_PASS program', measure(bare.programFd('xdp_pass'), pkt, repeat)]);
  bare.close();

  const dp = TestDataplane.load({ puntRate: 1n << 30n, puntBurst: 1n << 30n, puntRingSize: PUNT_RING });
  try {
    // an established TCP flow, set up by its real handshake
    const tcp = normalizedKey({ family: 4, proto: IPPROTO_TCP, src: CLIENT4, sport: 40000, dst: SERVER4, dport: 80 });
    dp.admit(tcp.key, tcp.srcIsA);
    dp.run(frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1000, flags: 'S', window: 64240 }));
    dp.run(frame(4, false, { proto: 'tcp', sport: 80, dport: 40000, seq: 5000, ack: 1001, flags: 'SA', window: 65160 }));
    dp.run(frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1001, ack: 5001, flags: 'A', window: 502 }));
    rows.push(['established TCP hit (100-byte segment)', measure(dp.progFd, pkt, repeat)]);

    const udp = normalizedKey({ family: 4, proto: IPPROTO_UDP, src: CLIENT4, sport: 5300, dst: SERVER4, dport: 53 });
    dp.admit(udp.key, udp.srcIsA);
    const query = frame(4, true, { proto: 'udp', sport: 5300, dport: 53, payload: new Uint8Array(40) });
    dp.run(query);
    rows.push(['UDP hit', measure(dp.progFd, query, repeat)]);

    const outOfWindow = frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1001 + 50_000_000, ack: 5001, flags: 'PA', payload: new Uint8Array(100) });
    rows.push(['out-of-window drop', measure(dp.progFd, outOfWindow, repeat)]);

    const syn = frame(4, true, { proto: 'tcp', sport: 40001, dport: 80, seq: 1, flags: 'S', window: 64240, options: [{ kind: 'mss', value: 1460 }, { kind: 'wscale', shift: 7 }] });
    rows.push([`punt (SYN, ${PUNT_REPEAT} runs, ring not drained)`, measure(dp.progFd, syn, PUNT_REPEAT, 1)]);
    const counters = dp.counters();
    if ((counters.CNT_DROP_PUNT_RING_FULL ?? 0) > 0 || (counters.CNT_DROP_PUNT_LIMIT ?? 0) > 0)
      throw new Error(`punts were dropped while measuring: ${JSON.stringify(counters)}`);
  } finally {
    dp.close();
  }

  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, r] of rows) console.log(`${name.padEnd(width)}  ${String(r.ns).padStart(5)} ns/packet  ${r.verdict}`);
}

main();
