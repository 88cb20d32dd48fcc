// Maps an address to the bit set of the rules whose prefixes (in one
// dimension, one family) contain it. Prefixes either nest or are disjoint,
// so the rules containing an address are those of its longest matching
// prefix and of that prefix's ancestors: one set per distinct prefix, built
// as its parent's set plus its own rules.
//
// The lookup is a multibit trie (8 bits per level) with leaf pushing: a
// slot holds either a child node or the set of the longest prefix covering
// it, so a walk ends at the first slot without a child. A prefix whose
// length is not a multiple of 8 fills every slot its remaining bits cover.
// Chains of nodes with one child and no prefix of their own (the zero
// groups of IPv6 addresses) are skipped: the walk jumps to the chain's end
// after comparing the skipped bytes with the path that leads there. A walk
// takes at most 4 steps for IPv4 and 16 for IPv6, and stops where the query
// leaves the stored prefixes; nodes are at most twice the prefixes.

import type { RuleBitsetsBuilder } from './rule-bitsets.js';

/** A distinct prefix and the rules (bit indices) that name it. */
export interface PrefixRules {
  /** Network order; host bits beyond `len` are zero. */
  addr: Uint8Array;
  len: number;
  rules: readonly number[];
}

const STRIDE = 8;
const SLOTS = 1 << STRIDE;

/** A node while building. */
interface BuildNode {
  /** Slot -> child node. */
  children: Map<number, number>;
  /** Per slot: its set; absent while no prefix ends here (all `inherited`). */
  sets?: Int32Array;
  /** Depth in bytes: the byte of the address its slots are indexed by. */
  depth: number;
  /** The address bytes leading here (those of the first prefix through it). */
  path: Uint8Array;
  /** The set its slots start with (the parent slot's). */
  inherited: number;
}

const setAt = (n: BuildNode, slot: number): number => n.sets?.[slot] ?? n.inherited;

export class AddressClasses {
  /**
   * Per node, SLOTS entries: >= 0 is the offset of the set's first word in
   * the built bits (the walk ends), < 0 is -(child node).
   */
  private readonly slots: Int32Array;
  /** Per node: the byte its slots are indexed by. */
  private readonly depth: Int32Array;
  /** Per node: the first byte skipped on the way to it (= depth: none). */
  private readonly skipFrom: Int32Array;
  /** Per node: the set offset when the skipped bytes do not match. */
  private readonly fallback: Int32Array;
  /** Per node, 16 bytes: the address bytes leading to it. */
  private readonly path: Uint8Array;

  /**
   * `unmatched`: the set for an address no prefix contains (the rules
   * without a prefix in this dimension).
   */
  constructor(unmatched: number, prefixes: readonly PrefixRules[], sets: RuleBitsetsBuilder) {
    const newNode = (depth: number, path: Uint8Array, inherited: number): BuildNode =>
      ({ children: new Map(), depth, path, inherited });
    const nodes = [newNode(0, new Uint8Array(16), unmatched)];
    // Shorter prefixes first: a child node then inherits its parent slot's
    // final set, and a prefix's parent set is what its slots hold before it.
    for (const { addr, len, rules } of [...prefixes].sort((a, b) => a.len - b.len)) {
      let node = nodes[0]!;
      let first = 0;
      let count = SLOTS;
      if (len > 0) {
        const full = Math.floor((len - 1) / STRIDE);
        for (let depth = 0; depth < full; depth++) {
          const slot = addr[depth]!;
          let child = node.children.get(slot);
          if (child === undefined) {
            node.children.set(slot, child = nodes.length);
            nodes.push(newNode(depth + 1, addr, setAt(node, slot)));
          }
          node = nodes[child]!;
        }
        const rest = len - full * STRIDE;
        first = addr[full]! & (0xff << (STRIDE - rest));
        count = 1 << (STRIDE - rest);
      }
      node.sets ??= new Int32Array(SLOTS).fill(node.inherited);
      node.sets.fill(sets.addExtending(node.sets[first]!, rules), first, first + count);
    }

    // Lay out the nodes that stay, breadth first, skipping chains of nodes
    // with one child and no prefix.
    const words = sets.words;
    const kept = [nodes[0]!];
    const skipFrom = [0];
    const slots: number[] = [];
    for (let index = 0; index < kept.length; index++) {
      const n = kept[index]!;
      for (let s = 0; s < SLOTS; s++) {
        const child = n.children.get(s);
        if (child === undefined) {
          slots.push(setAt(n, s) * words);
          continue;
        }
        let target = nodes[child]!;
        while (!target.sets && target.children.size === 1) target = nodes[target.children.values().next().value!]!;
        slots.push(-kept.length);
        kept.push(target);
        skipFrom.push(n.depth + 1);
      }
    }

    this.slots = Int32Array.from(slots);
    this.depth = Int32Array.from(kept, (n) => n.depth);
    this.skipFrom = Int32Array.from(skipFrom);
    this.fallback = Int32Array.from(kept, (n) => n.inherited * words);
    this.path = new Uint8Array(16 * kept.length);
    kept.forEach((n, i) => this.path.set(n.path, 16 * i));
  }

  /** Where the set for `addr` (16 bytes, network order) starts in the built bits. */
  setOffsetOf(addr: Uint8Array): number {
    const { slots, depth, skipFrom, path } = this;
    let node = 0;
    for (;;) {
      const v = slots[(node << STRIDE) + addr[depth[node]!]!]!;
      if (v >= 0) return v;
      node = -v;
      for (let b = skipFrom[node]!, end = depth[node]!; b < end; b++) {
        if (addr[b] !== path[16 * node + b]) return this.fallback[node]!;
      }
    }
  }
}

