// One matcher dimension over a small integer domain (ports, ICMP type,
// interface or zone index): the range endpoints of the rules cut the domain
// into intervals whose values every rule treats alike; each interval gets
// the bit set of the rules accepting it, and a table maps every value
// straight to where its set starts, so a lookup is one load.

import type { RuleBitsetsBuilder } from './rule-bitsets.js';

/** Inclusive range of values. */
export interface ValueRange {
  lo: number;
  hi: number;
}

export class ValueClasses {
  /** Per value: the offset of its set's first word in the built bits. */
  private readonly table: Int32Array;
  /**
   * 0 when one set covers the whole domain (the table then has one entry,
   * so an unconstrained dimension costs no cache miss), else all ones.
   */
  private readonly mask: number;

  /**
   * `accepted[i]`: the values rule i accepts (ranges may overlap), or
   * undefined for every value.
   */
  constructor(domain: number, accepted: readonly (readonly ValueRange[] | undefined)[], sets: RuleBitsetsBuilder) {
    const current = new Int32Array(sets.words);
    // Sweep events: at `at`, rule `rule` gains (+1) or loses (-1) a covering range.
    const events: { at: number; rule: number; delta: number }[] = [];
    accepted.forEach((ranges, rule) => {
      if (!ranges) {
        current[rule >> 5]! |= 1 << (rule & 31);
        return;
      }
      for (const { lo, hi } of ranges) {
        events.push({ at: lo, rule, delta: 1 });
        if (hi + 1 < domain) events.push({ at: hi + 1, rule, delta: -1 });
      }
    });
    if (events.length === 0) {
      this.table = Int32Array.of(sets.add(current) * sets.words);
      this.mask = 0;
      return;
    }
    events.sort((a, b) => a.at - b.at);
    const covering = new Int32Array(accepted.length);
    const table = new Int32Array(domain);
    let e = 0;
    let start = 0;
    while (start < domain) {
      for (; e < events.length && events[e]!.at === start; e++) {
        const { rule, delta } = events[e]!;
        covering[rule]! += delta;
        if (covering[rule]! > 0) current[rule >> 5]! |= 1 << (rule & 31);
        else current[rule >> 5]! &= ~(1 << (rule & 31));
      }
      const end = e < events.length ? events[e]!.at : domain;
      table.fill(sets.add(current) * sets.words, start, end);
      start = end;
    }
    this.table = table;
    this.mask = -1;
  }

  /** Where the set for `value` (0 .. domain - 1) starts in the built bits. */
  setOffsetOf(value: number): number {
    return this.table[value & this.mask]!;
  }
}
