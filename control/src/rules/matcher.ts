// Compiled first-match matcher: Lakshman and Stiliadis's bit-vector scheme
// over partitions by family and protocol.
//
// A query's family and protocol pick exactly one partition: the rules that
// can match that pair (a rule without a protocol joins every partition of
// its families). Within it, rule i (in file order) is bit i. Each remaining
// dimension (source address, destination address, source port, destination
// port, ICMP type, interface, zone) splits its values into classes the
// partition's rules treat alike and stores, per class, the bit set of the
// rules that accept it. A query looks up its class in every dimension (a
// trie walk for the addresses, one table load for the rest), ANDs the seven
// sets word by word from the lowest rule up and stops at the first word
// with a bit left: its lowest bit is the first matching rule.
//
// Partitioning shrinks the sets a query scans (a TCP query never reads UDP
// rules); all sets of a partition live in one Int32Array and every lookup
// table is a typed array, so a query reads a few dense runs of memory and
// allocates nothing. The AND is unrolled over a fixed number of dimensions:
// a dimension no rule of the partition constrains has a single set that
// holds every rule, and loading it costs less than a data-dependent branch.

import { AddressClasses, type PrefixRules } from './address-classes.js';
import { RuleBitsetsBuilder } from './rule-bitsets.js';
import type { Family, FlowQuery, Matcher, Rule, RuleSet } from './types.js';
import { ValueClasses, type ValueRange } from './value-classes.js';

const PROTOCOLS = 256;
const PORTS = 0x10000;

/** The set of each value: per address, a trie walk; otherwise a table. */
function addressClasses(
  family: Family,
  rules: readonly Rule[],
  prefixesOf: (r: Rule) => Rule['src'],
  sets: RuleBitsetsBuilder,
): AddressClasses {
  const unmatched = new Int32Array(sets.words);
  const distinct = new Map<string, PrefixRules & { rules: number[] }>();
  rules.forEach((rule, bit) => {
    const prefixes = prefixesOf(rule);
    if (!prefixes) {
      unmatched[bit >> 5]! |= 1 << (bit & 31);
      return;
    }
    for (const p of prefixes) {
      if (p.family !== family) continue;
      const key = `${Buffer.from(p.addr).toString('hex')}/${p.len}`;
      let entry = distinct.get(key);
      if (!entry) distinct.set(key, entry = { addr: p.addr, len: p.len, rules: [] });
      entry.rules.push(bit);
    }
  });
  return new AddressClasses(sets.add(unmatched), [...distinct.values()], sets);
}

const single = (value: number): ValueRange[] => [{ lo: value, hi: value }];

/** The rules of one family and protocol (or of the protocols no rule names). */
class Partition {
  /** Rules by bit index (file order). */
  private readonly rules: readonly Rule[];
  private readonly words: number;
  private readonly bits: Int32Array;
  private readonly src: AddressClasses;
  private readonly dst: AddressClasses;
  private readonly sport: ValueClasses;
  private readonly dport: ValueClasses;
  /** Value: ICMP type + 1 (0: not ICMP). */
  private readonly icmpType: ValueClasses;
  /** Value: interface or zone index (0: a name no rule uses). */
  private readonly iif: ValueClasses;
  private readonly zone: ValueClasses;

  constructor(family: Family, rules: readonly Rule[], iifIndex: Map<string, number>, zoneIndex: Map<string, number>) {
    const sets = new RuleBitsetsBuilder(rules.length);
    this.rules = rules;
    this.words = sets.words;
    this.src = addressClasses(family, rules, (r) => r.src, sets);
    this.dst = addressClasses(family, rules, (r) => r.dst, sets);
    this.sport = new ValueClasses(PORTS, rules.map((r) => r.sport), sets);
    this.dport = new ValueClasses(PORTS, rules.map((r) => r.dport), sets);
    this.icmpType = new ValueClasses(PROTOCOLS + 1, rules.map((r) => (r.icmpType === undefined ? undefined : single(r.icmpType + 1))), sets);
    this.iif = new ValueClasses(iifIndex.size + 1, rules.map((r) => r.iif?.flatMap((name) => single(iifIndex.get(name)!))), sets);
    this.zone = new ValueClasses(zoneIndex.size + 1, rules.map((r) => r.zone?.flatMap((name) => single(zoneIndex.get(name)!))), sets);
    this.bits = sets.build();
  }

  match(q: FlowQuery, iif: number, zone: number): Rule | undefined {
    const { words, bits } = this;
    const a = this.src.setOffsetOf(q.src);
    const b = this.dst.setOffsetOf(q.dst);
    const c = this.sport.setOffsetOf(q.sport & 0xffff);
    const d = this.dport.setOffsetOf(q.dport & 0xffff);
    const e = this.icmpType.setOffsetOf(q.icmpType < 0 ? 0 : (q.icmpType & 0xff) + 1);
    const f = this.iif.setOffsetOf(iif);
    const g = this.zone.setOffsetOf(zone);
    for (let w = 0; w < words; w++) {
      const x = bits[a + w]! & bits[b + w]! & bits[c + w]! & bits[d + w]! & bits[e + w]! & bits[f + w]! & bits[g + w]!;
      if (x !== 0) return this.rules[(w << 5) + 31 - Math.clz32(x & -x)];
    }
    return undefined;
  }
}

/** Numbers the names the rules use from 1 (0 stands for every other name). */
function nameIndex(rules: readonly Rule[], namesOf: (r: Rule) => readonly string[] | undefined): Map<string, number> {
  const index = new Map<string, number>();
  for (const r of rules) for (const name of namesOf(r) ?? []) if (!index.has(name)) index.set(name, index.size + 1);
  return index;
}

class PartitionedMatcher implements Matcher {
  /** Index (family 6 ? 256 : 0) + protocol. */
  private readonly partitionOf: Partition[];
  private readonly iifIndex: Map<string, number>;
  private readonly zoneIndex: Map<string, number>;

  constructor(ruleSet: RuleSet) {
    const rules = [...ruleSet.rules].sort((a, b) => a.id - b.id);
    this.iifIndex = nameIndex(rules, (r) => r.iif);
    this.zoneIndex = nameIndex(rules, (r) => r.zone);
    this.partitionOf = [];
    for (const family of [4, 6] as const) {
      const ofFamily = rules.filter((r) => r.families.includes(family));
      const named = new Set(ofFamily.flatMap((r) => (r.proto === undefined ? [] : [r.proto])));
      const partition = (proto: number | undefined): Partition =>
        new Partition(family, ofFamily.filter((r) => r.proto === undefined || r.proto === proto), this.iifIndex, this.zoneIndex);
      const others = partition(undefined);
      const base = family === 6 ? PROTOCOLS : 0;
      for (let proto = 0; proto < PROTOCOLS; proto++) this.partitionOf[base + proto] = others;
      for (const proto of named) this.partitionOf[base + proto] = partition(proto);
    }
  }

  match(q: FlowQuery): Rule | undefined {
    const partition = this.partitionOf[(q.family === 6 ? PROTOCOLS : 0) + (q.proto & 0xff)]!;
    return partition.match(q, this.iifIndex.get(q.iif) ?? 0, this.zoneIndex.get(q.zone) ?? 0);
  }
}

/** Compiles a rule set into a matcher whose cost grows slowly with rule count. */
export function compileMatcher(rules: RuleSet): Matcher {
  return new PartitionedMatcher(rules);
}
