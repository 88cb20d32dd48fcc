// Answers a first packet that a `reject` rule refused: a TCP RST for TCP, an
// ICMP/ICMPv6 destination-unreachable for everything else, sent back out of
// the interface the packet came in on (xdp_tx_out via a live-frames test run).
//
// The reply comes from the address the client tried to reach, as netfilter's
// REJECT does, so the client's stack matches it to its socket. Nothing is
// sent for multicast/broadcast destinations.
import type { FrameInjector } from '../bpf/inject.js';
import type { Logger } from '../log.js';
import { finishChecksum, internetChecksum, pseudoHeaderSum, sumWords } from '../net/checksum.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../net/protocols.js';
import type { ControllerStats } from './controller-stats.js';

const ETH_ALEN = 6;
const TCP_RST = 0x04;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;
const TCP_FIN = 0x01;
const REPLY_TTL = 64;
/** RFC 4443: an ICMPv6 error carries as much of the packet as fits the minimum MTU. */
const IPV6_MIN_MTU = 1280;
const FRAME_MAX = 1600;

export class RejectSender {
  private readonly injector: FrameInjector;
  private readonly stats: ControllerStats;
  private readonly log: Logger;
  private readonly out = new Uint8Array(FRAME_MAX);

  constructor(injector: FrameInjector, stats: ControllerStats, log: Logger) {
    this.injector = injector;
    this.stats = stats;
    this.log = log;
  }

  /** frame: the refused packet from its Ethernet header; l3Off/l4Off as parsed by the data plane. */
  send(frame: Uint8Array, l3Off: number, l4Off: number, ifindex: number): void {
    const len = buildReject(frame, l3Off, l4Off, this.out);
    if (len === 0) return;
    try {
      this.injector.transmit(this.out.subarray(0, len), ifindex);
      this.stats.add('rejects_sent');
    } catch (err) {
      this.log.warn({ err, ifindex }, 'sending a reject failed');
    }
  }
}

/**
 * Writes the reply to `frame` into out and returns its length, or 0 when no
 * reply is due (multicast/broadcast destination, not a SYN, truncated input).
 */
export function buildReject(frame: Uint8Array, l3Off: number, l4Off: number, out: Uint8Array): number {
  if (l3Off < 2 * ETH_ALEN || l4Off <= l3Off || l4Off > frame.length) return 0;
  const version = frame[l3Off]! >> 4;
  if (version !== 4 && version !== 6) return 0;
  const v4 = version === 4;
  const addrLen = v4 ? 4 : 16;
  const srcOff = l3Off + (v4 ? 12 : 8);
  const dstOff = srcOff + addrLen;
  if (isGroupAddress(frame, dstOff, v4)) return 0;
  const proto = v4 ? frame[l3Off + 9]! : lastNextHeader(frame, l3Off, l4Off);

  // L2: the same header (VLAN tags included) with the MAC addresses swapped.
  out.set(frame.subarray(0, l3Off), 0);
  out.set(frame.subarray(ETH_ALEN, 2 * ETH_ALEN), 0);
  out.set(frame.subarray(0, ETH_ALEN), ETH_ALEN);
  const ipOff = l3Off;
  const ipLen = v4 ? 20 : 40;
  const l4 = ipOff + ipLen;

  let l4Len: number;
  let outProto: number;
  if (proto === IPPROTO_TCP) {
    l4Len = writeTcpRst(frame, l3Off, l4Off, v4, out, l4);
    if (l4Len === 0) return 0;
    outProto = IPPROTO_TCP;
  } else {
    l4Len = writeUnreachable(frame, l3Off, proto, v4, out, l4);
    outProto = v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  }
  writeIpHeader(frame, srcOff, dstOff, v4, outProto, l4Len, out, ipOff);
  const outSrc = ipOff + (v4 ? 12 : 8);
  const outDst = outSrc + addrLen;
  const csumOff = outProto === IPPROTO_TCP ? l4 + 16 : l4 + 2;
  // ICMPv4 has no pseudo-header; TCP and ICMPv6 do.
  const initial = outProto === IPPROTO_ICMP ? 0 : pseudoHeaderSum(out, outSrc, outDst, v4 ? 4 : 16, outProto, l4Len);
  const csum = finishChecksum(sumWords(out, l4, l4 + l4Len, initial));
  out[csumOff] = csum >> 8;
  out[csumOff + 1] = csum & 0xff;
  return l4 + l4Len;
}

function isGroupAddress(frame: Uint8Array, dstOff: number, v4: boolean): boolean {
  if (!v4) return frame[dstOff] === 0xff;
  const first = frame[dstOff]!;
  const broadcast = frame[dstOff] === 255 && frame[dstOff + 1] === 255 && frame[dstOff + 2] === 255 && frame[dstOff + 3] === 255;
  return (first & 0xf0) === 0xe0 || broadcast;
}

/** The upper-layer protocol of an IPv6 packet: the next-header byte that led to l4Off. */
function lastNextHeader(frame: Uint8Array, l3Off: number, l4Off: number): number {
  let next = frame[l3Off + 6]!;
  let off = l3Off + 40;
  while (off < l4Off) {
    const hdrNext = frame[off]!;
    // Fragment headers are 8 bytes; the others give their length in 8-byte units after the first 8.
    off += next === 44 ? 8 : (frame[off + 1]! + 1) * 8;
    next = hdrNext;
  }
  return next;
}

function writeIpHeader(
  frame: Uint8Array,
  srcOff: number,
  dstOff: number,
  v4: boolean,
  proto: number,
  l4Len: number,
  out: Uint8Array,
  off: number,
): void {
  const addrLen = v4 ? 4 : 16;
  if (v4) {
    out.fill(0, off, off + 20);
    out[off] = 0x45;
    const total = 20 + l4Len;
    out[off + 2] = total >> 8;
    out[off + 3] = total & 0xff;
    out[off + 6] = 0x40; // DF
    out[off + 8] = REPLY_TTL;
    out[off + 9] = proto;
    out.set(frame.subarray(dstOff, dstOff + addrLen), off + 12);
    out.set(frame.subarray(srcOff, srcOff + addrLen), off + 16);
    const csum = internetChecksum(out, off, off + 20);
    out[off + 10] = csum >> 8;
    out[off + 11] = csum & 0xff;
  } else {
    out.fill(0, off, off + 8);
    out[off] = 0x60;
    out[off + 4] = l4Len >> 8;
    out[off + 5] = l4Len & 0xff;
    out[off + 6] = proto;
    out[off + 7] = REPLY_TTL;
    out.set(frame.subarray(dstOff, dstOff + addrLen), off + 8);
    out.set(frame.subarray(srcOff, srcOff + addrLen), off + 24);
  }
}

/** RST answering a SYN (RFC 9293 3.10.7.1); returns the TCP length, 0 if the packet is not a SYN. */
function writeTcpRst(frame: Uint8Array, l3Off: number, l4Off: number, v4: boolean, out: Uint8Array, off: number): number {
  if (l4Off + 20 > frame.length) return 0;
  const flags = frame[l4Off + 13]!;
  if ((flags & (TCP_SYN | TCP_RST)) !== TCP_SYN) return 0;
  const ipPayloadEnd = v4 ? l3Off + ((frame[l3Off + 2]! << 8) | frame[l3Off + 3]!) : l3Off + 40 + ((frame[l3Off + 4]! << 8) | frame[l3Off + 5]!);
  const dataLen = Math.max(0, ipPayloadEnd - l4Off - (frame[l4Off + 12]! >> 4) * 4);
  const seq = ((frame[l4Off + 4]! << 24) | (frame[l4Off + 5]! << 16) | (frame[l4Off + 6]! << 8) | frame[l4Off + 7]!) >>> 0;
  const ack = (seq + dataLen + 1 + (flags & TCP_FIN ? 1 : 0)) >>> 0;
  out.fill(0, off, off + 20);
  out.set(frame.subarray(l4Off + 2, l4Off + 4), off); // source port: the port the client tried
  out.set(frame.subarray(l4Off, l4Off + 2), off + 2);
  out[off + 8] = ack >>> 24;
  out[off + 9] = (ack >>> 16) & 0xff;
  out[off + 10] = (ack >>> 8) & 0xff;
  out[off + 11] = ack & 0xff;
  out[off + 12] = 5 << 4;
  out[off + 13] = TCP_RST | TCP_ACK;
  return 20;
}

/** Destination unreachable quoting the refused packet; returns the ICMP length. */
function writeUnreachable(frame: Uint8Array, l3Off: number, proto: number, v4: boolean, out: Uint8Array, off: number): number {
  // Port unreachable for UDP (what a closed port answers), administratively prohibited otherwise.
  const type = v4 ? 3 : 1;
  const code = proto === IPPROTO_UDP ? (v4 ? 3 : 4) : v4 ? 13 : 1;
  // RFC 792: the IP header plus 8 bytes; RFC 4443: as much as fits 1280 bytes.
  // Quote from the IP header's own length: a short frame carries Ethernet padding.
  const ipLen = v4 ? (frame[l3Off + 2]! << 8) | frame[l3Off + 3]! : 40 + ((frame[l3Off + 4]! << 8) | frame[l3Off + 5]!);
  const available = Math.min(frame.length - l3Off, ipLen);
  const quote = v4 ? Math.min(available, (frame[l3Off]! & 0x0f) * 4 + 8) : Math.min(available, IPV6_MIN_MTU - 40 - 8);
  out.fill(0, off, off + 8);
  out[off] = type;
  out[off + 1] = code;
  out.set(frame.subarray(l3Off, l3Off + quote), off + 8);
  return 8 + quote;
}
