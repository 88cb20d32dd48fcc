// How fast RingBufferConsumer drains the punt ring, and what draining does to
// the event loop. The XDP program fills the ring through BPF_PROG_TEST_RUN
// (repeat: one punt per run), then the consumer walks it: first with
// synchronous consume() calls (raw records/s), then woken by poll with the
// default budget, measuring how long other work waits meanwhile. Needs root.
//
// Usage: node --import tsx bench/ringbuf-bench.ts [build/syncwall.bpf.o]
import { puntMeta } from '../control/src/bpf/codec.js';
import { BpfObject, progTestRun } from '../control/src/bpf/libbpf.js';
import { RingBufferConsumer } from '../control/src/bpf/ringbuf.js';
import { DpConfigLayout, MapName, ProgName, RodataVar } from '../control/src/gen/layout.js';
import { buildFrame } from '../control/src/net/packet.js';

const objPath = process.argv[2] ?? 'build/syncwall.bpf.o';
const RING_SIZE = 16 << 20;
const ROUNDS = 20;

/** An Ethernet/IPv4/UDP frame with no connection entry: the program punts it. */
function udpFrame(): Uint8Array {
  return buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 40000, dport: 53, payload: new Uint8Array(18) } });
}

const obj = BpfObject.open(objPath);
obj.setMapMaxEntries(MapName.sw_punt_ring, RING_SIZE);
const rodata = obj.rodata();
rodata.writeBigUInt64LE(1n << 40n, RodataVar.sw_cfg.offset + DpConfigLayout.fields.punt_rate.offset);
rodata.writeBigUInt64LE(1n << 40n, RodataVar.sw_cfg.offset + DpConfigLayout.fields.punt_burst.offset);
obj.load();
const progFd = obj.programFd(ProgName.xdp_syncwall);
const ringFd = obj.mapFd(MapName.sw_punt_ring);
const frame = udpFrame();

let checksum = 0;
let records = 0;
let lastLen = 0;
let batches = 0;
let target = 0;
let reached: (() => void) | undefined;

const consumer = new RingBufferConsumer({
  mapFd: ringFd,
  size: RING_SIZE,
  // Touch the record as a real consumer would: its type and the packet length.
  onRecord(buf, off, len) {
    checksum += puntMeta.type(buf, off) + puntMeta.capLen(buf, off);
    lastLen = len;
    records++;
  },
  onBatchEnd() {
    batches++;
    if (records >= target) reached?.();
  },
  onError(err) {
    console.error(err);
    process.exit(1);
  },
});

// One probe punt tells the record size, hence how many records fill the ring.
progTestRun(progFd, { data: frame });
consumer.consume();
const perFill = Math.floor(RING_SIZE / ((lastLen + 8 + 7) & ~7)) - 1;
const fill = (): void => void progTestRun(progFd, { data: frame, repeat: perFill });

let syncNs = 0n;
for (let r = 0; r < ROUNDS; r++) {
  fill();
  const start = process.hrtime.bigint();
  let n = 0;
  while (n < perFill) n += consumer.consume(Infinity);
  syncNs += process.hrtime.bigint() - start;
}
const syncRate = ((ROUNDS * perFill) / Number(syncNs)) * 1e9;

consumer.start();
// While the poller drains, a setImmediate chain stands for other work: the
// gaps between its runs are how long the loop was held.
const gaps: number[] = [];
let polledNs = 0n;
batches = 0;
for (let r = 0; r < ROUNDS; r++) {
  target = records + perFill;
  fill();
  const start = process.hrtime.bigint();
  let draining = true;
  let last = start;
  const tick = (): void => {
    if (!draining) return;
    const now = process.hrtime.bigint();
    gaps.push(Number(now - last));
    last = now;
    setImmediate(tick);
  };
  setImmediate(tick);
  await new Promise<void>((resolve) => (reached = resolve));
  draining = false;
  polledNs += process.hrtime.bigint() - start;
}
gaps.sort((a, b) => a - b);
const pct = (p: number): number => gaps[Math.min(gaps.length - 1, Math.floor((p / 100) * gaps.length))]!;
const polledRate = ((ROUNDS * perFill) / Number(polledNs)) * 1e9;

consumer.close();
obj.close();
const mega = (n: number): string => `${(n / 1e6).toFixed(2)} M`;
const ms = (ns: number): string => `${(ns / 1e6).toFixed(2)} ms`;
console.log(`ring ${RING_SIZE >> 20} MiB, ${perFill} records of ${lastLen} bytes per fill, ${ROUNDS} fills per mode (checksum ${checksum})`);
console.log(`consume() loop: ${mega(syncRate)} records/s`);
console.log(`poll + budget ${consumer.budget}: ${mega(polledRate)} records/s in ${batches} turns`);
console.log(`event loop held between other work while draining: p50 ${ms(pct(50))}, p99 ${ms(pct(99))}, max ${ms(gaps.at(-1)!)}`);
