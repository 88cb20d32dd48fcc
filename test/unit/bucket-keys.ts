// Deterministic pseudo-random flows for the bucket tests: flow i is drawn
// from SHA-512("flow i"), so a failure names a flow that can be rebuilt.
// Addresses stay in ordinary unicast space (IPv4 1-223 but not 127, IPv6
// 2000::/3), so the data plane never takes them for local traffic.
import { createHash } from 'node:crypto';
import { formatAddress } from '../../control/src/net/address.js';

const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;

export interface RandomFlow {
  family: 4 | 6;
  /** IPPROTO_TCP, IPPROTO_UDP, or ICMP/ICMPv6 echo (sport == dport == the identifier). */
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

function unicastAddress(bytes: Buffer, family: 4 | 6): string {
  const a = Uint8Array.from(bytes.subarray(0, family === 4 ? 4 : 16));
  if (family === 4) {
    a[0] = 1 + (a[0]! % 223);
    if (a[0] === 127) a[0] = 128;
  } else {
    a[0] = 0x20 | (a[0]! & 0x1f);
  }
  return formatAddress(a);
}

export function randomFlow(i: number): RandomFlow {
  const h = createHash('sha512').update(`flow ${i}`).digest();
  const family = h[0]! & 1 ? 6 : 4;
  const kind = h[1]! % 3;
  const proto = kind === 0 ? IPPROTO_TCP : kind === 1 ? IPPROTO_UDP : family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  const sport = h.readUInt16BE(2);
  return {
    family,
    proto,
    src: unicastAddress(h.subarray(8, 24), family),
    dst: unicastAddress(h.subarray(24, 40), family),
    sport,
    dport: kind === 2 ? sport : h.readUInt16BE(4),
  };
}
