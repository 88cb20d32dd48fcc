// Binary trie over address prefixes, each carrying a value. Walking a query
// address down it yields the values of every stored prefix that contains
// the address, shortest first. The walk is bounded by the address length
// and stops where the query leaves the stored prefixes, so its cost does not
// grow with the number of prefixes.

export class PrefixTrie<T> {
  /** Two children per node (-1: none); node 0 is the root (the /0 prefix). */
  private readonly children: Int32Array;
  /** Index into `values` of the prefix ending at each node, or -1. */
  private readonly ends: Int32Array;
  readonly values: readonly T[];

  /** `prefixes`: address as 4 int32 words (network order), length, value. Prefixes must be distinct. */
  constructor(prefixes: Iterable<{ words: ArrayLike<number>; len: number; value: T }>) {
    const children: number[] = [-1, -1];
    const ends: number[] = [-1];
    const values: T[] = [];
    for (const { words, len, value } of prefixes) {
      let node = 0;
      for (let d = 0; d < len; d++) {
        const bit = (words[d >> 5]! >> (31 - (d & 31))) & 1;
        let next = children[2 * node + bit]!;
        if (next < 0) {
          next = ends.length;
          children[2 * node + bit] = next;
          children.push(-1, -1);
          ends.push(-1);
        }
        node = next;
      }
      ends[node] = values.length;
      values.push(value);
    }
    this.children = Int32Array.from(children);
    this.ends = Int32Array.from(ends);
    this.values = values;
  }

  /**
   * Writes into `out` the value indices of the prefixes containing the
   * address at `query[base..base+3]`, shortest first; returns how many.
   */
  matches(query: Int32Array, base: number, out: Int32Array): number {
    const { children, ends } = this;
    let count = 0;
    let node = 0;
    for (let d = 0; ; d++) {
      const end = ends[node]!;
      if (end >= 0) out[count++] = end;
      const bit = (query[base + (d >> 5)]! >> (31 - (d & 31))) & 1;
      node = children[2 * node + bit]!;
      if (node < 0) return count;
    }
  }
}
