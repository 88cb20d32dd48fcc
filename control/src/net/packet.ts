// Packet builder: Ethernet (with 802.1Q/802.1ad tags), IPv4 (with options),
// IPv6 (with extension headers), TCP (with options), UDP, ICMP and ICMPv6,
// all checksums filled in. Every header field a test may need to corrupt
// has an override; without overrides the result is a well-formed frame.
import { addressBytes, macBytes } from './address.js';
import { finishChecksum, internetChecksum, pseudoHeaderSum, sumWords } from './checksum.js';
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

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;

export class PacketBuildError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PacketBuildError';
  }
}

export interface VlanTag {
  id: number;
  /** 0x8100 (802.1Q, default) or 0x88a8 (802.1ad outer tag). */
  tpid?: number;
  pcp?: number;
}

export interface EthernetSpec {
  src?: string;
  dst?: string;
  /** Outermost first. */
  vlans?: VlanTag[];
  /** EtherType after the tags; derived from the IP version by default. */
  type?: number;
}

export interface Ipv4Spec {
  version: 4;
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In 8-byte units. */
  fragmentOffset?: number;
  /** Raw option bytes, padded with EOL to a multiple of 4. */
  options?: Uint8Array;
  /** Overrides (for malformed packets). */
  protocol?: number;
  ihl?: number;
  totalLength?: number;
}

export type Ipv6Extension =
  | { type: 'hop-by-hop' | 'destination'; /** option bytes; padded to 8n - 2 */ options?: Uint8Array }
  | { type: 'routing'; routingType?: number; segmentsLeft?: number; addresses?: string[] }
  | { type: 'fragment'; offset?: number; more?: boolean; id?: number };

export interface Ipv6Spec {
  version: 6;
  src: string;
  dst: string;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  extensions?: Ipv6Extension[];
  /** Overrides (for malformed packets). */
  payloadLength?: number;
  nextHeader?: number;
}

export type IpSpec = Ipv4Spec | Ipv6Spec;

export type TcpOption =
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; shift: number }
  | { kind: 'sack-permitted' }
  | { kind: 'timestamp'; value: number; echo: number }
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: 'raw'; bytes: Uint8Array };

export interface TcpSpec {
  proto: 'tcp';
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  /** Letters of the flags set: F S R P A U E C, e.g. 'S', 'SA', 'FA', 'R'. */
  flags: string;
  window?: number;
  urgent?: number;
  options?: TcpOption[];
  payload?: Uint8Array;
  /** Override of the data offset in 32-bit words (for malformed packets). */
  dataOffset?: number;
}

export interface UdpSpec {
  proto: 'udp';
  sport: number;
  dport: number;
  payload?: Uint8Array;
  /** Override of the UDP length field. */
  length?: number;
}

/** ICMP on IPv4, ICMPv6 on IPv6: the IP version decides. */
export interface IcmpSpec {
  proto: 'icmp';
  type: number;
  code?: number;
  /** Echo identifier and sequence (the second 32-bit word). */
  id?: number;
  seq?: number;
  /** The second 32-bit word for other types (unused, MTU, pointer); wins over id/seq. */
  rest?: number;
  /** Bytes after the 8-byte header: echo data, or the quoted packet of an error. */
  payload?: Uint8Array;
}

/** Any other protocol: the payload is the whole L4 part. */
export interface RawL4Spec {
  proto: number;
  payload?: Uint8Array;
}

export type L4Spec = TcpSpec | UdpSpec | IcmpSpec | RawL4Spec;

export interface FrameSpec {
  eth?: EthernetSpec;
  ip: IpSpec;
  l4: L4Spec;
}

export const DEFAULT_SRC_MAC = '02:00:00:00:00:01';
export const DEFAULT_DST_MAC = '02:00:00:00:00:02';
const TCP_FLAG_BITS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, U: 0x20, E: 0x40, C: 0x80 };

export function tcpFlagBits(flags: string): number {
  let bits = 0;
  for (const ch of flags) {
    const bit = TCP_FLAG_BITS[ch];
    if (bit === undefined) throw new PacketBuildError(`unknown TCP flag "${ch}" in "${flags}"`);
    bits |= bit;
  }
  return bits;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function padTo(bytes: Uint8Array, multiple: number, fill = 0): Uint8Array {
  const len = Math.ceil(bytes.length / multiple) * multiple;
  const out = new Uint8Array(len).fill(fill);
  out.set(bytes);
  return out;
}

function l4ProtoNumber(l4: L4Spec, family: 4 | 6): number {
  switch (l4.proto) {
    case 'tcp':
      return IPPROTO_TCP;
    case 'udp':
      return IPPROTO_UDP;
    case 'icmp':
      return family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    default:
      return l4.proto;
  }
}

function tcpOptionBytes(options: TcpOption[]): Uint8Array {
  const parts = options.map((o): number[] | Uint8Array => {
    switch (o.kind) {
      case 'mss':
        return [2, 4, o.value >> 8, o.value & 0xff];
      case 'wscale':
        return [3, 3, o.shift];
      case 'sack-permitted':
        return [4, 2];
      case 'timestamp': {
        const b = new Uint8Array(10);
        const dv = new DataView(b.buffer);
        b[0] = 8;
        b[1] = 10;
        dv.setUint32(2, o.value >>> 0);
        dv.setUint32(6, o.echo >>> 0);
        return b;
      }
      case 'nop':
        return [1];
      case 'eol':
        return [0];
      case 'raw':
        return o.bytes;
    }
  });
  return padTo(concat(parts.map((p) => Uint8Array.from(p))), 4);
}

/** The L4 header and payload, checksum still zero (it needs the IP addresses). */
function l4Bytes(l4: L4Spec): Uint8Array {
  if (l4.proto === 'tcp') {
    const opts = tcpOptionBytes(l4.options ?? []);
    const payload = l4.payload ?? new Uint8Array(0);
    const out = new Uint8Array(20 + opts.length + payload.length);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, l4.sport);
    dv.setUint16(2, l4.dport);
    dv.setUint32(4, (l4.seq ?? 0) >>> 0);
    dv.setUint32(8, (l4.ack ?? 0) >>> 0);
    out[12] = (l4.dataOffset ?? (20 + opts.length) / 4) << 4;
    out[13] = tcpFlagBits(l4.flags);
    dv.setUint16(14, l4.window ?? 64240);
    dv.setUint16(18, l4.urgent ?? 0);
    out.set(opts, 20);
    out.set(payload, 20 + opts.length);
    return out;
  }
  if (l4.proto === 'udp') {
    const payload = l4.payload ?? new Uint8Array(0);
    const out = new Uint8Array(8 + payload.length);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, l4.sport);
    dv.setUint16(2, l4.dport);
    dv.setUint16(4, l4.length ?? out.length);
    out.set(payload, 8);
    return out;
  }
  if (l4.proto === 'icmp') {
    const payload = l4.payload ?? new Uint8Array(0);
    const out = new Uint8Array(8 + payload.length);
    const dv = new DataView(out.buffer);
    out[0] = l4.type;
    out[1] = l4.code ?? 0;
    dv.setUint32(4, l4.rest !== undefined ? l4.rest >>> 0 : (((l4.id ?? 0) << 16) | (l4.seq ?? 0)) >>> 0);
    out.set(payload, 8);
    return out;
  }
  return l4.payload ?? new Uint8Array(0);
}

/** Offset of the checksum field inside the L4 header, or -1 if it has none. */
function l4ChecksumOffset(proto: number): number {
  switch (proto) {
    case IPPROTO_TCP:
      return 16;
    case IPPROTO_UDP:
      return 6;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      return 2;
    default:
      return -1;
  }
}

function ipv6ExtensionBytes(ext: Ipv6Extension, next: number): { proto: number; bytes: Uint8Array } {
  switch (ext.type) {
    case 'hop-by-hop':
    case 'destination': {
      // PadN fills the header to a multiple of 8 bytes.
      const opts = ext.options ?? new Uint8Array(0);
      const len = Math.ceil((2 + opts.length) / 8) * 8;
      const out = new Uint8Array(len);
      out[0] = next;
      out[1] = len / 8 - 1;
      out.set(opts, 2);
      const pad = len - 2 - opts.length;
      if (pad === 1) out[2 + opts.length] = 0;
      else if (pad > 1) {
        out[2 + opts.length] = 1;
        out[3 + opts.length] = pad - 2;
      }
      return { proto: ext.type === 'hop-by-hop' ? IPPROTO_HOPOPTS : IPPROTO_DSTOPTS, bytes: out };
    }
    case 'routing': {
      const addrs = (ext.addresses ?? []).map(addressBytes);
      const out = new Uint8Array(8 + 16 * addrs.length);
      out[0] = next;
      out[1] = 2 * addrs.length;
      out[2] = ext.routingType ?? 0;
      out[3] = ext.segmentsLeft ?? addrs.length;
      addrs.forEach((a, i) => out.set(a, 8 + 16 * i));
      return { proto: IPPROTO_ROUTING, bytes: out };
    }
    case 'fragment': {
      const out = new Uint8Array(8);
      const dv = new DataView(out.buffer);
      out[0] = next;
      dv.setUint16(2, ((ext.offset ?? 0) << 3) | (ext.more ? 1 : 0));
      dv.setUint32(4, ext.id ?? 0);
      return { proto: IPPROTO_FRAGMENT, bytes: out };
    }
  }
}

function checkedAddress(text: string, family: 4 | 6): Uint8Array {
  const bytes = addressBytes(text);
  if (bytes.length !== (family === 4 ? 4 : 16)) throw new PacketBuildError(`${text} is not an IPv${family} address`);
  return bytes;
}

function buildIpv4(ip: Ipv4Spec, proto: number, l4: Uint8Array): Uint8Array {
  const opts = padTo(ip.options ?? new Uint8Array(0), 4);
  const hlen = 20 + opts.length;
  const out = new Uint8Array(hlen + l4.length);
  const dv = new DataView(out.buffer);
  out[0] = 0x40 | (ip.ihl ?? hlen / 4);
  out[1] = ip.tos ?? 0;
  dv.setUint16(2, ip.totalLength ?? out.length);
  dv.setUint16(4, ip.id ?? 0);
  dv.setUint16(6, (ip.dontFragment ? 0x4000 : 0) | (ip.moreFragments ? 0x2000 : 0) | (ip.fragmentOffset ?? 0));
  out[8] = ip.ttl ?? 64;
  out[9] = ip.protocol ?? proto;
  out.set(checkedAddress(ip.src, 4), 12);
  out.set(checkedAddress(ip.dst, 4), 16);
  out.set(opts, 20);
  dv.setUint16(10, internetChecksum(out, 0, hlen));
  out.set(l4, hlen);
  fillL4Checksum(out, hlen, proto, 4);
  return out;
}

function buildIpv6(ip: Ipv6Spec, proto: number, l4: Uint8Array): Uint8Array {
  const exts: Uint8Array[] = [];
  let next = proto;
  for (const ext of [...(ip.extensions ?? [])].reverse()) {
    const e = ipv6ExtensionBytes(ext, next);
    exts.unshift(e.bytes);
    next = e.proto;
  }
  const extBytes = concat(exts);
  const out = new Uint8Array(40 + extBytes.length + l4.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, (6 << 28) | ((ip.trafficClass ?? 0) << 20) | (ip.flowLabel ?? 0));
  dv.setUint16(4, ip.payloadLength ?? extBytes.length + l4.length);
  out[6] = ip.nextHeader ?? next;
  out[7] = ip.hopLimit ?? 64;
  out.set(checkedAddress(ip.src, 6), 8);
  out.set(checkedAddress(ip.dst, 6), 24);
  out.set(extBytes, 40);
  out.set(l4, 40 + extBytes.length);
  fillL4Checksum(out, 40 + extBytes.length, proto, 6);
  return out;
}

/**
 * Computes the L4 checksum of an IP packet in place: ip[0..] is the IP
 * header, the L4 header starts at l4Off and runs to the end of the array.
 * ICMPv4 has no pseudo-header; TCP, UDP and ICMPv6 do.
 */
export function fillL4Checksum(ip: Uint8Array, l4Off: number, proto: number, family: 4 | 6): void {
  const at = l4ChecksumOffset(proto);
  if (at < 0 || l4Off + at + 2 > ip.length) return;
  const len = ip.length - l4Off;
  ip[l4Off + at] = 0;
  ip[l4Off + at + 1] = 0;
  let initial = 0;
  if (proto !== IPPROTO_ICMP)
    initial = family === 4 ? pseudoHeaderSum(ip, 12, 16, 4, proto, len) : pseudoHeaderSum(ip, 8, 24, 16, proto, len);
  let csum = finishChecksum(sumWords(ip, l4Off, ip.length, initial));
  // UDP sends a computed 0 as 0xffff (0 means "no checksum").
  if (proto === IPPROTO_UDP && csum === 0) csum = 0xffff;
  ip[l4Off + at] = csum >> 8;
  ip[l4Off + at + 1] = csum & 0xff;
}

/** The IP packet alone (no Ethernet): what an ICMP error quotes. */
export function buildIpPacket(ip: IpSpec, l4: L4Spec): Uint8Array {
  const proto = l4ProtoNumber(l4, ip.version);
  const body = l4Bytes(l4);
  return ip.version === 4 ? buildIpv4(ip, proto, body) : buildIpv6(ip, proto, body);
}

/** Ethernet header with its tags for an IP packet of the given version. */
export function buildEthernetHeader(eth: EthernetSpec, ipVersion: 4 | 6 | undefined): Uint8Array {
  const vlans = eth.vlans ?? [];
  const out = new Uint8Array(14 + 4 * vlans.length);
  const dv = new DataView(out.buffer);
  out.set(macBytes(eth.dst ?? DEFAULT_DST_MAC), 0);
  out.set(macBytes(eth.src ?? DEFAULT_SRC_MAC), 6);
  vlans.forEach((tag, i) => {
    dv.setUint16(12 + 4 * i, tag.tpid ?? ETH_P_8021Q);
    dv.setUint16(14 + 4 * i, ((tag.pcp ?? 0) << 13) | (tag.id & 0xfff));
  });
  const type = eth.type ?? (ipVersion === 6 ? ETH_P_IPV6 : ETH_P_IP);
  dv.setUint16(12 + 4 * vlans.length, type);
  return out;
}

/** A whole Ethernet frame. */
export function buildFrame(spec: FrameSpec): Uint8Array {
  return concat([buildEthernetHeader(spec.eth ?? {}, spec.ip.version), buildIpPacket(spec.ip, spec.l4)]);
}

/** An ARP request (who-has target, tell sender) as a broadcast frame. */
export function buildArpRequest(senderMac: string, senderIp: string, targetIp: string): Uint8Array {
  const eth = buildEthernetHeader({ src: senderMac, dst: 'ff:ff:ff:ff:ff:ff', type: ETH_P_ARP }, undefined);
  const arp = new Uint8Array(28);
  const dv = new DataView(arp.buffer);
  dv.setUint16(0, 1); // Ethernet
  dv.setUint16(2, ETH_P_IP);
  arp[4] = 6;
  arp[5] = 4;
  dv.setUint16(6, 1); // request
  arp.set(macBytes(senderMac), 8);
  arp.set(checkedAddress(senderIp, 4), 14);
  arp.set(checkedAddress(targetIp, 4), 24);
  return concat([eth, arp]);
}
