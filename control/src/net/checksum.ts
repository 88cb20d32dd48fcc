// Internet checksums (RFC 1071) over byte arrays, for packets the controller
// crafts (TCP RST, ICMP unreachable) and for the tests' packet builder.

/** One's-complement sum of buf[start..end) as 16-bit big-endian words, not yet folded. */
export function sumWords(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

/** Folds a sum to 16 bits and complements it: the value to store in a checksum field. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** Checksum of buf[start..end), e.g. an IPv4 header with its checksum field zeroed. */
export function internetChecksum(buf: Uint8Array, start: number, end: number): number {
  return finishChecksum(sumWords(buf, start, end));
}

/**
 * Sum of the TCP/UDP/ICMPv6 pseudo-header. src/dst are the address bytes
 * (4 or 16) at srcOff/dstOff in buf.
 */
export function pseudoHeaderSum(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  addrLen: 4 | 16,
  proto: number,
  l4Length: number,
): number {
  return sumWords(buf, srcOff, srcOff + addrLen) + sumWords(buf, dstOff, dstOff + addrLen) + proto + l4Length;
}
