// One-line, tcpdump-like description of a frame, for logs and test failures.
// Never throws: a truncated or bogus header ends the description with a note.
import { formatAddress, formatMac } from './address.js';
import { ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6 } from './packet.js';
import {
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_ROUTING,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from './protocols.js';

const TCP_FLAG_LETTERS = 'FSRPAUEC';

function tcpFlags(bits: number): string {
  let s = '';
  for (let i = 0; i < 8; i++) if (bits & (1 << i)) s += TCP_FLAG_LETTERS[i];
  return s || '.';
}

function describeL4(f: Uint8Array, off: number, end: number, proto: number): string {
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const has = (n: number): boolean => off + n <= f.length;
  switch (proto) {
    case IPPROTO_TCP: {
      if (!has(20)) return 'tcp (truncated)';
      const doff = (f[off + 12]! >> 4) * 4;
      return `tcp ${dv.getUint16(off)} > ${dv.getUint16(off + 2)} [${tcpFlags(f[off + 13]!)}] seq ${dv.getUint32(off + 4)} ack ${dv.getUint32(off + 8)} win ${dv.getUint16(off + 14)} doff ${doff} len ${Math.max(0, end - off - doff)}`;
    }
    case IPPROTO_UDP:
      if (!has(8)) return 'udp (truncated)';
      return `udp ${dv.getUint16(off)} > ${dv.getUint16(off + 2)} len ${dv.getUint16(off + 4)}`;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      if (!has(8)) return `${proto === IPPROTO_ICMP ? 'icmp' : 'icmp6'} (truncated)`;
      return `${proto === IPPROTO_ICMP ? 'icmp' : 'icmp6'} type ${f[off]} code ${f[off + 1]} id ${dv.getUint16(off + 4)} seq ${dv.getUint16(off + 6)}`;
    default:
      return `proto ${proto} len ${end - off}`;
  }
}

function describeIpv4(f: Uint8Array, off: number): string {
  if (off + 20 > f.length) return 'ipv4 (truncated)';
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const ihl = (f[off]! & 0x0f) * 4;
  const tot = dv.getUint16(off + 2);
  const frag = dv.getUint16(off + 6);
  const fragText = frag & 0x3fff ? ` frag ${(frag & 0x1fff) * 8}${frag & 0x2000 ? '+' : ''}` : '';
  const head = `ipv4 ${formatAddress(f.subarray(off + 12, off + 16))} > ${formatAddress(f.subarray(off + 16, off + 20))} ttl ${f[off + 8]} ihl ${ihl} len ${tot}${fragText}`;
  if (ihl < 20 || frag & 0x1fff) return head;
  return `${head}, ${describeL4(f, off + ihl, Math.min(f.length, off + tot), f[off + 9]!)}`;
}

function describeIpv6(f: Uint8Array, off: number): string {
  if (off + 40 > f.length) return 'ipv6 (truncated)';
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const end = Math.min(f.length, off + 40 + dv.getUint16(off + 4));
  const parts = [
    `ipv6 ${formatAddress(f.subarray(off + 8, off + 24))} > ${formatAddress(f.subarray(off + 24, off + 40))} hlim ${f[off + 7]} plen ${dv.getUint16(off + 4)}`,
  ];
  let next = f[off + 6]!;
  let at = off + 40;
  const names: Record<number, string> = { [IPPROTO_HOPOPTS]: 'hbh', [IPPROTO_ROUTING]: 'rt', [IPPROTO_DSTOPTS]: 'dst', [IPPROTO_FRAGMENT]: 'frag' };
  while (names[next] !== undefined) {
    if (at + 8 > f.length) return `${parts.join(', ')}, ${names[next]} (truncated)`;
    parts.push(names[next]!);
    if (next === IPPROTO_FRAGMENT) return parts.join(', ');
    const len = (f[at + 1]! + 1) * 8;
    next = f[at]!;
    at += len;
  }
  parts.push(describeL4(f, at, end, next));
  return parts.join(', ');
}

/** Describes an Ethernet frame in words. */
export function describeFrame(f: Uint8Array): string {
  if (f.length < 14) return `runt frame of ${f.length} bytes`;
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const parts = [`eth ${formatMac(f.subarray(6, 12))} > ${formatMac(f.subarray(0, 6))}`];
  let type = dv.getUint16(12);
  let off = 14;
  while (type === ETH_P_8021Q || type === ETH_P_8021AD) {
    if (off + 4 > f.length) return `${parts.join(', ')}, vlan (truncated)`;
    parts.push(`vlan ${dv.getUint16(off) & 0xfff}${type === ETH_P_8021AD ? ' (802.1ad)' : ''}`);
    type = dv.getUint16(off + 2);
    off += 4;
  }
  if (type === ETH_P_IP) parts.push(describeIpv4(f, off));
  else if (type === ETH_P_IPV6) parts.push(describeIpv6(f, off));
  else if (type === ETH_P_ARP) parts.push('arp');
  else parts.push(`ethertype 0x${type.toString(16).padStart(4, '0')}`);
  return `${parts.join(', ')} (${f.length} bytes)`;
}

/** Hex dump, 16 bytes a line, for failure messages. */
export function hexDump(f: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < f.length; i += 16) {
    const row = Array.from(f.subarray(i, i + 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
    lines.push(`${i.toString(16).padStart(4, '0')}  ${row}`);
  }
  return lines.join('\n');
}
