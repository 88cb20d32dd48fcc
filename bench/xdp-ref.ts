// The reference side of item 1: ns/packet of bench/xdp_ref.bpf.c (parse +
// one hash lookup) with its table holding 1k, 100k or 1M entries, on the
// same frames bench/xdp-cost.ts sends through the data plane. Each fill is
// a fresh load of the object; filler keys (lib/flow-fill.ts) never match the
// measured frames.
import { join } from 'node:path';
import { flowEntry, flowKey } from '../control/src/bpf/codec.js';
import { BpfObject, mapUpdate, progTestRun } from '../control/src/bpf/libbpf.js';
import { addressBytes } from '../control/src/net/address.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../control/src/net/protocols.js';
import { REPO_ROOT } from '../test/lab/paths.js';
import { CLIENT4, frame, SERVER4 } from '../test/bpf/packets.js';
import { fillFlowTable } from './lib/flow-fill.js';

const OBJECT = join(REPO_ROOT, 'build/xdp_ref.bpf.o');

export class ReferenceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReferenceError';
  }
}

/** The frames xdp-cost.ts measures: a 100-byte TCP segment and a 40-byte UDP query. */
const TCP_FRAME = frame(4, true, { proto: 'tcp', sport: 40000, dport: 80, seq: 1001, ack: 5001, flags: 'PA', payload: new Uint8Array(100) });
const UDP_FRAME = frame(4, true, { proto: 'udp', sport: 5300, dport: 53, payload: new Uint8Array(40) });
const HIT_KEYS = [
  { family: 4, proto: IPPROTO_TCP, addrA: addressBytes(CLIENT4), addrB: addressBytes(SERVER4), portA: 40000, portB: 80 },
  { family: 4, proto: IPPROTO_UDP, addrA: addressBytes(CLIENT4), addrB: addressBytes(SERVER4), portA: 5300, portB: 53 },
];

/** Inserts the two hit keys and entries - 2 fillers, so the table holds `entries`. */
function fill(mapFd: number, entries: number): void {
  const key = new Uint8Array(flowKey.size);
  const value = new Uint8Array(flowEntry.size);
  for (const k of HIT_KEYS) {
    flowKey.write(key, 0, k);
    mapUpdate(mapFd, key, value);
  }
  fillFlowTable(mapFd, entries - HIT_KEYS.length);
}

/** Lowest of three calls of `repeat` runs: the program's cost, least disturbed by the machine. */
function bestNs(progFd: number, data: Uint8Array, repeat: number): number {
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, progTestRun(progFd, { data, repeat }).durationNs);
  return best;
}

export interface ReferenceCost {
  tcpHitNs: number;
  udpHitNs: number;
}

export function referenceCost(entries: number, repeat: number): ReferenceCost {
  const obj = BpfObject.open(OBJECT);
  try {
    obj.setMapMaxEntries('ref_flows', entries);
    obj.load();
    fill(obj.mapFd('ref_flows'), entries);
    const progFd = obj.programFd('xdp_ref');
    return { tcpHitNs: bestNs(progFd, TCP_FRAME, repeat), udpHitNs: bestNs(progFd, UDP_FRAME, repeat) };
  } catch (err) {
    throw new ReferenceError(`reference program with ${entries} entries`, { cause: err });
  } finally {
    obj.close();
  }
}
