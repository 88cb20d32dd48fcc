// Sets of rules as bit vectors (bit i = the i-th rule of a partition, in
// file order), all of one length, packed back to back in one Int32Array so
// a lookup reads dense runs of flat memory instead of scattered objects.

/** Appends sets one by one; a set's id is its position. */
export class RuleBitsetsBuilder {
  /** Words per set: ceil(rules / 32), at least 1. */
  readonly words: number;
  private bits: Int32Array;
  private size = 0;

  constructor(ruleCount: number) {
    this.words = Math.max(1, Math.ceil(ruleCount / 32));
    this.bits = new Int32Array(this.words * 16);
  }

  /** Appends a copy of `bits` (one set's words); returns its id. */
  add(bits: Int32Array): number {
    this.reserve();
    this.bits.set(bits, this.size * this.words);
    return this.size++;
  }

  /** Appends a copy of set `of` with the given rules added; returns its id. */
  addExtending(of: number, rules: readonly number[]): number {
    this.reserve();
    const base = this.size * this.words;
    this.bits.copyWithin(base, of * this.words, (of + 1) * this.words);
    for (const r of rules) this.bits[base + (r >> 5)]! |= 1 << (r & 31);
    return this.size++;
  }

  /** Set s occupies words [s * words, (s + 1) * words) of the result. */
  build(): Int32Array {
    return this.bits.slice(0, this.size * this.words);
  }

  private reserve(): void {
    if ((this.size + 1) * this.words <= this.bits.length) return;
    const grown = new Int32Array(this.bits.length * 2);
    grown.set(this.bits);
    this.bits = grown;
  }
}
