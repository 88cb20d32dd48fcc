// Builds the matcher's FlowQuery from a normalized flow key: the first
// packet's direction decides which endpoint is the source. Used for punted
// first packets and for re-checking live entries after a rules reload.
import { flowKey } from '../bpf/codec.js';
import { IPPROTO_ICMPV6, isIcmp } from '../net/protocols.js';
import type { FlowQuery } from '../rules/types.js';

export interface IngressInterface {
  name: string;
  zone: string;
}


/** A query object to be reused for every decision (matching allocates nothing). */
export function newFlowQuery(): FlowQuery {
  return { family: 4, proto: 0, src: new Uint8Array(16), dst: new Uint8Array(16), sport: 0, dport: 0, icmpType: -1, iif: '', zone: '' };
}

/**
 * Fills q from the struct flow_key at buf[keyOff]. srcIsA: the first packet
 * came from endpoint A. icmpType applies only to ICMP/ICMPv6 flows.
 */
export function fillFlowQuery(
  q: FlowQuery,
  buf: Uint8Array,
  keyOff: number,
  srcIsA: boolean,
  icmpType: number,
  iface: IngressInterface | undefined,
): void {
  const src = srcIsA ? flowKey.addrAOffset(keyOff) : flowKey.addrBOffset(keyOff);
  const dst = srcIsA ? flowKey.addrBOffset(keyOff) : flowKey.addrAOffset(keyOff);
  q.family = flowKey.family(buf, keyOff) === 6 ? 6 : 4;
  q.proto = flowKey.proto(buf, keyOff);
  q.src.set(buf.subarray(src, src + 16));
  q.dst.set(buf.subarray(dst, dst + 16));
  q.sport = srcIsA ? flowKey.portA(buf, keyOff) : flowKey.portB(buf, keyOff);
  q.dport = srcIsA ? flowKey.portB(buf, keyOff) : flowKey.portA(buf, keyOff);
  q.icmpType = isIcmp(q.proto) ? icmpType : -1;
  q.iif = iface?.name ?? '';
  q.zone = iface?.zone ?? '';
}

/** The ICMP type that opens an echo flow, for re-checking ICMP entries. */
export function echoRequestType(proto: number): number {
  return proto === IPPROTO_ICMPV6 ? 128 : 8;
}
