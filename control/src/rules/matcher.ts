// Compiled first-match matcher: a hierarchical trie over source and
// destination prefixes whose leaves are small tuple spaces (as in Open
// vSwitch's classifier) over the remaining fields.
//
// Every rule is expanded into entries: one per family it applies to x
// source prefix x destination prefix x source/destination port prefix (a
// range is split into aligned prefixes) x interface x zone.
// - Per family, a trie over the source prefixes (no `from` = the /0 root);
//   each source prefix has its own trie over the destination prefixes of
//   its entries; each (source, destination) pair is a leaf.
// - A leaf groups its entries by mask shape (protocol given, port prefix
//   lengths, ICMP type given, interface given, zone given); a group is a
//   hash table from the masked key to the lowest rule id stored under it.
// A lookup walks the source trie, and for each source prefix containing the
// query's source address walks that prefix's destination trie; in each leaf
// reached it probes the groups. The answer is the lowest rule id found.
// Subtrees, leaves and groups remember their lowest rule id, so the search
// skips anything that cannot beat the best match so far.
//
// Trie walks are bounded by the address length and stop where the query
// leaves the stored prefixes; the groups probed are those of the few
// address pairs that contain the query. So the cost depends on how many
// rule prefixes nest around an address, not on the number of rules.
// The query is one fixed array of int32 words (addresses, ports, protocol,
// family, ICMP type, interface and zone indices) filled in place; probes
// mask and hash it without building keys, so matching allocates nothing.

import { KeyTable } from './key-table.js';
import { portRangeToPrefixes, type PortPrefix } from './port-prefix.js';
import { PrefixTrie } from './prefix-trie.js';
import type { Family, FlowQuery, Matcher, Prefix, Rule, RuleSet } from './types.js';

// Query word layout.
const W_SRC = 0; // 4 words, network order; IPv4 uses the first
const W_DST = 4;
const W_PORTS = 8; // sport << 16 | dport
const W_META = 9; // proto << 24 | icmp type (9 bits; 256 = not ICMP)
const W_IFACE = 10; // interface index << 16 | zone index (0: named by no rule)
const WORDS = 11;

const NOT_ICMP = 256;
const NO_MATCH = 0x7fffffff;
/** Longest chain of nested prefixes a walk can report: /0 .. /128. */
const MAX_HITS = 129;

/** The non-address part of one expanded entry. */
interface Rest {
  proto?: number;
  sport?: PortPrefix;
  dport?: PortPrefix;
  icmpType?: number;
  iif?: string;
  zone?: string;
}

interface Group {
  sportLen: number;
  dportLen: number;
  minId: number;
  table: KeyTable;
}

/** One (source prefix, destination prefix) pair: its groups by lowest rule id. */
interface Leaf {
  minId: number;
  groups: Group[];
}

/** One source prefix: the destination trie of its entries. */
interface SrcNode {
  minId: number;
  dsts: PrefixTrie<Leaf>;
}

// Monomorphic on purpose (Int32Array only): it runs twice per query.
function addressWords(addr: Uint8Array, out: Int32Array, base: number): void {
  for (let j = 0; j < 4; j++) {
    out[base + j] = (addr[4 * j]! << 24) | (addr[4 * j + 1]! << 16) | (addr[4 * j + 2]! << 8) | addr[4 * j + 3]!;
  }
}

const portMask = (len: number): number => (len === 0 ? 0 : (0xffff << (16 - len)) & 0xffff);

/**
 * Identifies a trie node while building (tries are per family): equal
 * prefixes however written, and /0 the same as no prefix.
 */
const prefixId = (p: Prefix | undefined): string => (p && p.len > 0 ? `${Buffer.from(p.addr).toString('hex')}/${p.len}` : '');

class Interner {
  private readonly ids = new Map<string, number>();
  id(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.ids.size + 1;
      this.ids.set(name, id);
    }
    return id;
  }
  /** 0 for a name no rule uses. */
  lookup(name: string): number {
    return this.ids.get(name) ?? 0;
  }
}

/** Accumulates one leaf's entries before the tries are built. */
class LeafBuilder {
  readonly groups = new Map<string, Group>();
  minId = NO_MATCH;

  add(rest: Rest, words: Int32Array, id: number): void {
    const sportLen = rest.sport?.len ?? 0;
    const dportLen = rest.dport?.len ?? 0;
    const shape = [rest.proto !== undefined, sportLen, dportLen, rest.icmpType !== undefined,
      rest.iif !== undefined, rest.zone !== undefined].join('/');
    let group = this.groups.get(shape);
    if (!group) {
      const slots: number[] = [];
      const masks: number[] = [];
      const use = (word: number, mask: number): void => {
        if (mask !== 0) { slots.push(word); masks.push(mask); }
      };
      use(W_PORTS, (portMask(sportLen) << 16) | portMask(dportLen));
      use(W_META, (rest.proto !== undefined ? 0xff << 24 : 0) | (rest.icmpType !== undefined ? 0x1ff : 0));
      use(W_IFACE, (rest.iif !== undefined ? 0xffff << 16 : 0) | (rest.zone !== undefined ? 0xffff : 0));
      group = { sportLen, dportLen, minId: NO_MATCH, table: new KeyTable(slots, masks) };
      this.groups.set(shape, group);
    }
    group.table.insert(words, id);
    group.minId = Math.min(group.minId, id);
    this.minId = Math.min(this.minId, id);
  }

  build(): Leaf {
    return { minId: this.minId, groups: [...this.groups.values()].sort((a, b) => a.minId - b.minId) };
  }
}

class HierarchicalMatcher implements Matcher {
  /** Rules by id. */
  private readonly byId: Rule[] = [];
  private readonly iifs = new Interner();
  private readonly zones = new Interner();
  /** Source tries by family (index 4 and 6). */
  private readonly srcTries: PrefixTrie<SrcNode>[] = [];
  /** Per port: bit L set if some entry's port prefix of length L contains it (bit 0 always). */
  private readonly sportLens = new Int32Array(0x10000).fill(1);
  private readonly dportLens = new Int32Array(0x10000).fill(1);

  // Per-query scratch, reused so match() allocates nothing.
  private readonly query = new Int32Array(WORDS);
  private readonly srcHits = new Int32Array(MAX_HITS);
  private readonly dstHits = new Int32Array(MAX_HITS);

  constructor(ruleSet: RuleSet) {
    type SrcBuild = { prefix: Prefix | undefined; minId: number; dsts: Map<string, { prefix: Prefix | undefined; leaf: LeafBuilder }> };
    const srcs: Record<Family, Map<string, SrcBuild>> = { 4: new Map(), 6: new Map() };
    const portPrefixes = { sport: new Map<number, PortPrefix>(), dport: new Map<number, PortPrefix>() };

    for (const rule of ruleSet.rules) {
      this.byId[rule.id] = rule;
      const expandPorts = (ranges: Rule['sport']): (PortPrefix | undefined)[] =>
        ranges ? ranges.flatMap((r) => portRangeToPrefixes(r.lo, r.hi)) : [undefined];
      const sports = expandPorts(rule.sport);
      const dports = expandPorts(rule.dport);
      for (const p of sports) if (p) portPrefixes.sport.set(p.value * 32 + p.len, p);
      for (const p of dports) if (p) portPrefixes.dport.set(p.value * 32 + p.len, p);

      for (const family of rule.families) {
        const ofFamily = (list: Rule['src']): (Prefix | undefined)[] =>
          (list ? list.filter((p) => p.family === family) : [undefined]);
        for (const src of ofFamily(rule.src)) {
          let s = srcs[family].get(prefixId(src));
          if (!s) srcs[family].set(prefixId(src), s = { prefix: src, minId: NO_MATCH, dsts: new Map() });
          s.minId = Math.min(s.minId, rule.id);
          for (const dst of ofFamily(rule.dst)) {
            let d = s.dsts.get(prefixId(dst));
            if (!d) s.dsts.set(prefixId(dst), d = { prefix: dst, leaf: new LeafBuilder() });
            for (const sport of sports) for (const dport of dports)
              for (const iif of rule.iif ?? [undefined]) for (const zone of rule.zone ?? [undefined]) {
                const rest: Rest = {};
                if (rule.proto !== undefined) rest.proto = rule.proto;
                if (sport) rest.sport = sport;
                if (dport) rest.dport = dport;
                if (rule.icmpType !== undefined) rest.icmpType = rule.icmpType;
                if (iif !== undefined) rest.iif = iif;
                if (zone !== undefined) rest.zone = zone;
                d.leaf.add(rest, this.restWords(rest), rule.id);
              }
          }
        }
      }
    }

    const trieEntry = <T>(prefix: Prefix | undefined, value: T): { words: Int32Array; len: number; value: T } => {
      const words = new Int32Array(4);
      if (prefix) addressWords(prefix.addr, words, 0);
      return { words, len: prefix?.len ?? 0, value };
    };
    for (const family of [4, 6] as const) {
      this.srcTries[family] = new PrefixTrie([...srcs[family].values()].map((s) => trieEntry(s.prefix, {
        minId: s.minId,
        dsts: new PrefixTrie([...s.dsts.values()].map((d) => trieEntry(d.prefix, d.leaf.build()))),
      })));
    }
    for (const [lens, prefixes] of [[this.sportLens, portPrefixes.sport], [this.dportLens, portPrefixes.dport]] as const) {
      for (const p of prefixes.values()) {
        const end = p.value + (1 << (16 - p.len));
        for (let port = p.value; port < end; port++) lens[port]! |= 1 << p.len;
      }
    }
  }

  /** Lays out an entry's non-address values as query words (the groups mask them). */
  private restWords(rest: Rest): Int32Array {
    const q = this.query;
    q.fill(0);
    q[W_PORTS] = ((rest.sport?.value ?? 0) << 16) | (rest.dport?.value ?? 0);
    q[W_META] = ((rest.proto ?? 0) << 24) | (rest.icmpType ?? 0);
    q[W_IFACE] = ((rest.iif !== undefined ? this.iifs.id(rest.iif) : 0) << 16)
      | (rest.zone !== undefined ? this.zones.id(rest.zone) : 0);
    return q;
  }

  match(fq: FlowQuery): Rule | undefined {
    const q = this.query;
    addressWords(fq.src, q, W_SRC);
    addressWords(fq.dst, q, W_DST);
    if (fq.family === 4) q[W_SRC + 1] = q[W_SRC + 2] = q[W_SRC + 3] = q[W_DST + 1] = q[W_DST + 2] = q[W_DST + 3] = 0;
    const sport = fq.sport & 0xffff;
    const dport = fq.dport & 0xffff;
    q[W_PORTS] = (sport << 16) | dport;
    q[W_META] = ((fq.proto & 0xff) << 24) | (fq.icmpType < 0 ? NOT_ICMP : fq.icmpType & 0xff);
    q[W_IFACE] = (this.iifs.lookup(fq.iif) << 16) | this.zones.lookup(fq.zone);
    const sportBits = this.sportLens[sport]!;
    const dportBits = this.dportLens[dport]!;

    const srcTrie = this.srcTries[fq.family]!;
    const srcHits = this.srcHits;
    const dstHits = this.dstHits;
    let best = NO_MATCH;
    const nSrc = srcTrie.matches(q, W_SRC, srcHits);
    for (let i = 0; i < nSrc; i++) {
      const src = srcTrie.values[srcHits[i]!]!;
      if (src.minId >= best) continue;
      const nDst = src.dsts.matches(q, W_DST, dstHits);
      for (let j = 0; j < nDst; j++) {
        const leaf = src.dsts.values[dstHits[j]!]!;
        if (leaf.minId >= best) continue;
        const groups = leaf.groups;
        for (let k = 0; k < groups.length; k++) {
          const g = groups[k]!;
          if (g.minId >= best) break;
          if (((sportBits >> g.sportLen) & 1) === 0 || ((dportBits >> g.dportLen) & 1) === 0) continue;
          const id = g.table.lookup(q);
          if (id !== 0 && id < best) best = id;
        }
      }
    }
    return best === NO_MATCH ? undefined : this.byId[best];
  }
}

/** Compiles a rule set into a matcher whose cost does not grow with rule count. */
export function compileMatcher(rules: RuleSet): Matcher {
  return new HierarchicalMatcher(rules);
}
