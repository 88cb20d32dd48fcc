// A punted helper packet in the helper's terms (helper.ts HelperPacket): the
// flow's originator and responder from the normalized key and the entry's
// FLOW_F_ORIG_A, and the TCP payload found through the offsets the data
// plane reported. Nothing is trusted that the frame does not bound.
import { flowKey } from '../bpf/codec.js';
import { SwFamily } from '../gen/layout.js';
import type { HelperPacket } from './helper.js';

/** The TCP payload of a frame (IPv4 or IPv6 at l3Off, TCP at l4Off); an empty array if the headers do not fit. */
export function tcpPayload(frame: Uint8Array, l3Off: number, l4Off: number): Uint8Array {
  const version = (frame[l3Off] ?? 0) >> 4;
  let ipEnd: number;
  if (version === 4) ipEnd = l3Off + (((frame[l3Off + 2] ?? 0) << 8) | (frame[l3Off + 3] ?? 0));
  else if (version === 6) ipEnd = l3Off + 40 + (((frame[l3Off + 4] ?? 0) << 8) | (frame[l3Off + 5] ?? 0));
  else return new Uint8Array(0);
  const start = l4Off + ((frame[l4Off + 12] ?? 0) >> 4) * 4;
  const end = Math.min(ipEnd, frame.length);
  return start < end ? frame.subarray(start, end) : new Uint8Array(0);
}

/**
 * The helper's view of a punted packet: key at keyBuf[keyOff] (normalized),
 * srcIsA from the punt, origIsA from the entry's flags.
 */
export function helperPacket(keyBuf: Uint8Array, keyOff: number, srcIsA: boolean, origIsA: boolean, payload: Uint8Array): HelperPacket {
  const k = flowKey.read(keyBuf, keyOff);
  const a = { addr: k.addrA, port: k.portA };
  const b = { addr: k.addrB, port: k.portB };
  const [orig, resp] = origIsA ? [a, b] : [b, a];
  return {
    family: k.family === SwFamily.SW_FAMILY_V4 ? 4 : 6,
    fromOriginator: srcIsA === origIsA,
    originator: orig.addr,
    originatorPort: orig.port,
    responder: resp.addr,
    responderPort: resp.port,
    payload,
  };
}
