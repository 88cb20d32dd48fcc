// The compiled matcher must agree with the obvious linear reading of the
// rules (LinearMatcher) on random rule sets and random flows. Rules are
// generated as text over a small address/port space so lists, prefixes and
// ranges overlap and most queries hit something. The PRNG is seeded: a failure names its seed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAddress } from '../../control/src/rules/addr.js';
import { LinearMatcher } from '../../control/src/rules/linear-matcher.js';
import { compileMatcher } from '../../control/src/rules/matcher.js';
import { parseRules } from '../../control/src/rules/parser.js';
import type { FlowQuery, RuleSet } from '../../control/src/rules/types.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- generators ----

type Rand = () => number;
const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
const int = (rand: Rand, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

function v4Address(rand: Rand): string {
  return `10.${int(rand, 0, 3)}.${int(rand, 0, 3)}.${int(rand, 0, 7)}`;
}
/**
 * Mostly zero middle groups (paths the matcher's tries compress), and a set
 * bit inside them for the last interface ids.
 */
function v6Address(rand: Rand): string {
  const site = int(rand, 0, 3);
  const host = int(rand, 0, 7);
  const middle = host === 6 ? '1:' : host === 7 ? '0:8000:' : '';
  return `2001:db8:${site}::${middle}${host}`;
}

/** Prefix text with host bits cleared. */
function prefixText(rand: Rand): string {
  const v4 = rand() < 0.6;
  const parsed = parseAddress(v4 ? v4Address(rand) : v6Address(rand))!;
  const len = v4 ? pick(rand, [0, 8, 14, 16, 24, 29, 30, 32]) : pick(rand, [0, 32, 47, 48, 64, 125, 126, 128]);
  const bytes = parsed.addr;
  for (let bit = len; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  if (v4) return `${bytes.slice(0, 4).join('.')}/${len}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `${groups.join(':')}/${len}`;
}

const PORTS = [0, 22, 53, 80, 443, 1023, 1024, 8080, 65535];

function portsText(rand: Rand): string {
  const items: string[] = [];
  for (let n = int(rand, 1, 3); n > 0; n--) {
    if (rand() < 0.5) items.push(String(pick(rand, PORTS)));
    else {
      const lo = int(rand, 0, 70000) % 65536;
      items.push(`${lo}-${Math.min(65535, lo + int(rand, 0, rand() < 0.5 ? 100 : 40000))}`);
    }
  }
  return items.join(',');
}

function ruleLine(rand: Rand): string {
  const parts = [pick(rand, ['accept', 'drop', 'reject'])];
  const proto = pick(rand, ['tcp', 'tcp', 'udp', 'icmp', 'icmpv6', '47', undefined, undefined]);
  if (proto) parts.push('proto', proto);
  if (rand() < 0.1) parts.push('family', pick(rand, ['ipv4', 'ipv6']));
  const list = (): string => Array.from({ length: int(rand, 1, 3) }, () => prefixText(rand)).join(',');
  if (rand() < 0.5) parts.push('from', list());
  if (rand() < 0.5) parts.push('to', list());
  if (proto === 'tcp' || proto === 'udp') {
    if (rand() < 0.3) parts.push('sport', portsText(rand));
    if (rand() < 0.6) parts.push('dport', portsText(rand));
  }
  if ((proto === 'icmp' || proto === 'icmpv6') && rand() < 0.5) {
    parts.push('icmp-type', pick(rand, ['echo-request', 'echo-reply', 'dest-unreachable', '3', '128']));
  }
  if (rand() < 0.2) parts.push('iif', pick(rand, ['eth0', 'eth1', 'eth0,eth2']));
  if (rand() < 0.2) parts.push('zone', pick(rand, ['inside', 'outside', 'dmz,inside']));
  return parts.join(' ');
}

/** A rule set of `count` rules; lines the parser rejects (e.g. no address of the rule's family) are skipped. */
function ruleSet(rand: Rand, count: number): RuleSet {
  const lines: string[] = [];
  while (lines.length < count) {
    const line = ruleLine(rand);
    try {
      parseRules(line, 'gen');
      lines.push(line);
    } catch {
      // an impossible combination: draw again
    }
  }
  return parseRules(lines.join('\n'), 'gen.conf');
}

function query(rand: Rand): FlowQuery {
  const family = rand() < 0.6 ? 4 : 6;
  const proto = pick(rand, [6, 6, 17, family === 4 ? 1 : 58, 47]);
  const addr = (): Uint8Array => parseAddress(family === 4 ? v4Address(rand) : v6Address(rand))!.addr;
  const port = (): number => (rand() < 0.5 ? pick(rand, PORTS) : int(rand, 0, 65535));
  const hasPorts = proto === 6 || proto === 17;
  return {
    family, proto, src: addr(), dst: addr(),
    sport: hasPorts ? port() : 0,
    dport: hasPorts ? port() : 0,
    icmpType: proto === 1 || proto === 58 ? pick(rand, [0, 3, 8, 1, 128, 129]) : -1,
    iif: pick(rand, ['eth0', 'eth1', 'eth2', 'lo']),
    zone: pick(rand, ['inside', 'outside', 'dmz', 'none']),
  };
}

function describe(q: FlowQuery): string {
  const n = q.family === 4 ? 4 : 16;
  return JSON.stringify({ ...q, src: Buffer.from(q.src.slice(0, n)).toString('hex'), dst: Buffer.from(q.dst.slice(0, n)).toString('hex') });
}

for (const [seed, ruleCount, queries] of [[1, 5, 3000], [2, 30, 3000], [3, 200, 3000], [4, 1000, 3000], [5, 60, 3000], [6, 10_000, 1500]] as const) {
  test(`compiled matcher agrees with the linear reference (seed ${seed}, ${ruleCount} rules)`, () => {
    const rand = mulberry32(seed);
    const rules = ruleSet(rand, ruleCount);
    const matcher = compileMatcher(rules);
    const reference = new LinearMatcher(rules);
    let hits = 0;
    for (let i = 0; i < queries; i++) {
      const q = query(rand);
      const expected = reference.match(q);
      const got = matcher.match(q);
      if (got !== expected) {
        assert.fail(`seed ${seed} query ${i} ${describe(q)}: compiled rule ${got?.id} (${got?.source}), reference rule ${expected?.id} (${expected?.source})`);
      }
      if (expected) hits++;
    }
    // The generator must exercise matches, not only the implicit drop.
    assert.ok(hits > queries / 30, `only ${hits} of ${queries} queries matched a rule`);
  });
}
