// Splits an inclusive port range into the fewest aligned prefixes, so a
// range becomes a few exact-under-mask hash keys (1024-65535 -> 6 prefixes).

export interface PortPrefix {
  /** First port of the block; the low 16 - len bits are zero. */
  value: number;
  /** Leading bits that must match: 16 is one port, 0 is every port. */
  len: number;
}

export function portRangeToPrefixes(lo: number, hi: number): PortPrefix[] {
  const out: PortPrefix[] = [];
  let start = lo;
  while (start <= hi) {
    // Largest block aligned at start that does not run past hi.
    let size = start === 0 ? 0x10000 : start & -start;
    while (start + size - 1 > hi) size >>>= 1;
    out.push({ value: start, len: 16 - Math.log2(size) });
    start += size;
  }
  return out;
}
