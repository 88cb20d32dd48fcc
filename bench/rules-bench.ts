// Micro-benchmark of the compiled rules matcher: first-packet decisions per
// second with 10, 1k and 10k generated rules, and the ratio to the 10-rule
// rate; also the time to parse and to compile each rule set and the heap the
// compiled matcher keeps.
//
// Rules are shaped like the ClassBench ACL seeds (taken from real firewalls):
// mostly host and /24 prefixes with a few broad ones, v4 and v6, single
// ports, port lists and ranges, protocols, ICMP types, interfaces, zones, and
// a few protocol-less source blocks. Every size is measured on the same mix
// of flows, so that the sizes compare like with like:
//   - half are hits on a rule drawn uniformly from the whole list, kept only
//     if that rule is the first to match (so the median hit is half-way down
//     the list, not on a broad rule near the top);
//   - half are misses that reach the implicit drop: flows from inside or
//     outside the rules' address space to a service or a random port (scans
//     and floods are mostly misses, and a miss rules out every rule).
// A sample of the flows is checked against the linear reading of the rules
// (LinearMatcher).
//
// Rates are decisions per second of this process's CPU time, and the three
// sizes are measured in alternating rounds (best round kept): on a shared
// machine, time spent descheduled or a load burst during one size would
// otherwise skew the ratios. Parse and compile times are CPU time too.
//
//   node --import tsx bench/rules-bench.ts [--quick] [--json]
//
// --quick measures shorter rounds; --json prints one object per size instead
// of the table.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { LinearMatcher } from '../control/src/rules/linear-matcher.js';
import { compileMatcher } from '../control/src/rules/matcher.js';
import { parseRules } from '../control/src/rules/parser.js';
import type { FlowQuery, Matcher, RuleSet } from '../control/src/rules/types.js';

const quick = process.argv.includes('--quick');
const SIZES = [10, 1_000, 10_000];
/** Queries per size (a power of two: the loop indexes with a mask). */
const QUERIES = 8192;
/** Queries per size checked against the linear matcher. */
const SAMPLE = 256;
const ROUNDS = quick ? 3 : 5;
const ROUND_MS = quick ? 300 : 600;

let seed = 0x5eed;
function rand(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

const V4_LENGTHS = [8, 12, 16, 16, 20, 24, 24, 24, 24, 28, 32, 32, 32, 32, 32, 32];
const RANGES: readonly (readonly [number, number])[] = [[1024, 65535], [1024, 65535], [1024, 65535], [0, 1023], [6000, 6063], [8000, 8999]];
const SERVICES = [22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 993, 995, 3306, 5432, 6379, 8080, 8443];
const INTERFACES = ['eth0', 'eth1', 'eth2'];
const ZONES = ['inside', 'outside', 'dmz'];
const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };

/** 16-byte address buffer for `family` with the given leading bytes. */
function address(bytes: readonly number[]): Uint8Array {
  const buf = new Uint8Array(16);
  buf.set(bytes);
  return buf;
}

/** An address inside the rules' space: 10/8 and 172.16/12, or 2001:db8:0-f::/48. */
function insideAddress(family: 4 | 6): Uint8Array {
  return family === 4
    ? address(rand() < 0.7 ? [10, int(0, 255), int(0, 255), int(0, 255)] : [172, int(16, 31), int(0, 255), int(0, 255)])
    : address([0x20, 0x01, 0x0d, 0xb8, 0, int(0, 15), 0, int(0, 255), 0, 0, 0, 0, 0, 0, int(0, 255), int(0, 255)]);
}

/** Any address of the family (mostly outside the rules' space). */
function anyAddress(family: 4 | 6): Uint8Array {
  return address(Array.from({ length: family === 4 ? 4 : 16 }, () => int(0, 255)));
}

/** A prefix text and a function drawing an address inside it. */
interface PrefixGen {
  text: string;
  draw: () => Uint8Array;
}

function v4Prefix(): PrefixGen {
  const len = pick(V4_LENGTHS);
  const base = insideAddress(4);
  const value = (((base[0]! << 24) | (base[1]! << 16) | (base[2]! << 8) | base[3]!) & (-1 << (32 - len))) >>> 0;
  const bytes = (v: number): number[] => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  return {
    text: `${bytes(value).join('.')}/${len}`,
    draw: () => address(bytes((value + (len === 32 ? 0 : int(0, 2 ** (32 - len) - 1))) >>> 0)),
  };
}

/** /48 sites, /64 subnets and /128 hosts inside 2001:db8::/32. */
function v6Prefix(): PrefixGen {
  const len = pick([48, 64, 64, 128]);
  const groups = [0x2001, 0xdb8, int(0, 15), len >= 64 ? int(0, 255) : 0, 0, 0, 0, len === 128 ? int(1, 0xffff) : 0];
  return {
    text: `${groups.map((g) => g.toString(16)).join(':')}/${len}`,
    draw: () => {
      const buf = address(groups.flatMap((g) => [g >> 8, g & 255]));
      if (len < 128) buf[15] = int(1, 255);
      if (len < 64) buf[7] = int(0, 255);
      return buf;
    },
  };
}

/** A rule line and a function drawing a flow it accepts (earlier rules may take it). */
interface Generated {
  line: string;
  draw: () => FlowQuery;
}

function generateRule(): Generated {
  const family = rand() < 0.25 ? 6 : 4;
  const prefix = family === 6 ? v6Prefix : v4Prefix;
  if (rand() < 0.05) {
    // A block of a source subnet, any protocol.
    const src = prefix();
    return { line: `drop from ${src.text}`, draw: () => ({ ...randomFlow(family, insideAddress), src: src.draw() }) };
  }
  const proto = pick(['tcp', 'tcp', 'tcp', 'udp', 'udp', family === 6 ? 'icmpv6' : 'icmp']);
  const parts = [pick(['accept', 'accept', 'accept', 'drop', 'reject']), 'proto', proto];
  const src = rand() < 0.6 ? prefix() : undefined;
  const dst = rand() < 0.8 || !src ? prefix() : undefined;
  if (src) parts.push('from', src.text);
  if (dst) parts.push('to', dst.text);
  let dports: (() => number) | undefined;
  let sports: (() => number) | undefined;
  if (proto === 'icmp' || proto === 'icmpv6') {
    parts.push('icmp-type', 'echo-request');
  } else {
    const shape = rand();
    if (shape < 0.6) {
      const port = pick(SERVICES);
      parts.push('dport', String(port));
      dports = () => port;
    } else if (shape < 0.8) {
      const list = [...new Set([pick(SERVICES), pick(SERVICES), pick(SERVICES)])];
      parts.push('dport', list.join(','));
      dports = () => pick(list);
    } else {
      const lo = int(1024, 60000);
      const [from, to] = rand() < 0.7 ? pick(RANGES) : [lo, lo + int(1, 5000)];
      parts.push('dport', `${from}-${to}`);
      dports = () => int(from, to);
    }
    if (rand() < 0.1) {
      parts.push('sport', '1024-65535');
      sports = () => int(1024, 65535);
    }
  }
  const iif = rand() < 0.1 ? pick(INTERFACES) : undefined;
  if (iif) parts.push('iif', iif);
  const zones = rand() < 0.15 ? [...new Set([pick(ZONES), pick(ZONES)])] : undefined;
  if (zones) parts.push('zone', zones.join(','));
  return {
    line: parts.join(' '),
    draw: () => {
      const q = randomFlow(family, insideAddress);
      q.proto = PROTOCOLS[proto]!;
      if (src) q.src = src.draw();
      if (dst) q.dst = dst.draw();
      q.sport = sports ? sports() : q.proto === 6 || q.proto === 17 ? int(1024, 65535) : 0;
      q.dport = dports ? dports() : 0;
      q.icmpType = q.proto === 1 ? 8 : q.proto === 58 ? 128 : -1;
      if (iif) q.iif = iif;
      if (zones) q.zone = pick(zones);
      return q;
    },
  };
}

/** A new flow of `family`: TCP, UDP or ICMP echo, to a service or any port. */
function randomFlow(family: 4 | 6, srcAddress: (family: 4 | 6) => Uint8Array): FlowQuery {
  const proto = pick([6, 6, 6, 17, 17, family === 4 ? 1 : 58]);
  const ports = proto === 6 || proto === 17;
  return {
    family, proto, src: srcAddress(family), dst: insideAddress(family),
    sport: ports ? int(1024, 65535) : 0,
    dport: ports ? (rand() < 0.5 ? pick(SERVICES) : int(1, 65535)) : 0,
    icmpType: proto === 1 ? 8 : proto === 58 ? 128 : -1,
    iif: pick(INTERFACES), zone: pick(ZONES),
  };
}

/**
 * Half hits on rules drawn uniformly from the list, half misses. The
 * compiled matcher picks them (the linear one would take minutes at 10k
 * rules); a sample is checked against the linear reading of the rules.
 */
function queriesFor(ruleSet: RuleSet, generated: readonly Generated[], matcher: Matcher): FlowQuery[] {
  const queries: FlowQuery[] = [];
  while (queries.length < QUERIES) {
    if (queries.length % 2 === 0) {
      const index = Math.floor(rand() * generated.length);
      // A rule that earlier ones mostly shadow is given up after a few draws.
      for (let attempt = 0; attempt < 8; attempt++) {
        const q = generated[index]!.draw();
        if (matcher.match(q) === ruleSet.rules[index]) {
          queries.push(q);
          break;
        }
      }
    } else {
      const q = randomFlow(rand() < 0.75 ? 4 : 6, rand() < 0.5 ? insideAddress : anyAddress);
      if (!matcher.match(q)) queries.push(q);
    }
  }
  const linear = new LinearMatcher(ruleSet);
  for (let i = 0; i < QUERIES; i += QUERIES / SAMPLE) {
    const [want, got] = [linear.match(queries[i]!), matcher.match(queries[i]!)];
    if (want !== got) throw new Error(`query ${i}: compiled matcher says rule ${got?.id}, linear reading ${want?.id}`);
  }
  return queries;
}

const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** Decisions per CPU second over `ms` of CPU time. */
function run(matcher: Matcher, queries: FlowQuery[], ms: number): number {
  let n = 0;
  let sink = 0;
  const start = cpuMs();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 50_000; i++, n++) sink += matcher.match(queries[n & (QUERIES - 1)]!)?.id ?? 0;
    elapsed = cpuMs() - start;
  }
  if (sink < 0) throw new Error('unreachable: rule ids are positive');
  return n / (elapsed / 1000);
}

// The heap a compiled matcher keeps: used heap after a full collection,
// with and without it.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapUsed = (): number => {
  gc();
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
};

interface Case {
  rules: number;
  parseMs: number;
  compileMs: number;
  matcherBytes: number;
  matcher: Matcher;
  queries: FlowQuery[];
  /** Median position (rule id) of the first matching rule over the hits. */
  hitDepth: number;
  matched: number;
  rate: number;
}

const cases: Case[] = SIZES.map((count) => {
  const generated = Array.from({ length: count }, generateRule);
  const text = generated.map((g) => g.line).join('\n');
  const t0 = cpuMs();
  const ruleSet = parseRules(text, 'bench.conf');
  const parseMs = cpuMs() - t0;
  const before = heapUsed();
  const t1 = cpuMs();
  const matcher = compileMatcher(ruleSet);
  const compileMs = cpuMs() - t1;
  const matcherBytes = heapUsed() - before;
  const queries = queriesFor(ruleSet, generated, matcher);
  const ids = queries.map((q) => matcher.match(q)?.id ?? 0);
  const hits = ids.filter((id) => id > 0).sort((a, b) => a - b);
  return {
    rules: count, parseMs, compileMs, matcherBytes, matcher, queries,
    hitDepth: hits[hits.length >> 1] ?? 0, matched: hits.length / ids.length, rate: 0,
  };
});
// A warm-up long enough for the JIT's top tier, then rounds of each size in
// turn; the best round is the least disturbed.
for (const c of cases) run(c.matcher, c.queries, 500);
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) c.rate = Math.max(c.rate, run(c.matcher, c.queries, ROUND_MS));
}

const baseline = cases[0]!.rate;
if (process.argv.includes('--json')) {
  for (const c of cases) {
    const { rules, parseMs, compileMs, matcherBytes, hitDepth, matched, rate } = c;
    console.log(JSON.stringify({ rules, decisionsPerSec: Math.round(rate), ratio: rate / baseline, parseMs, compileMs, matcherBytes, hitDepth, matched }));
  }
} else {
  const rows: string[][] = [['rules', 'parse ms', 'compile ms', 'matcher MB', 'decisions/s', 'matched', 'median hit', 'ratio to 10']];
  for (const c of cases) {
    rows.push([
      String(c.rules), c.parseMs.toFixed(0), c.compileMs.toFixed(0), (c.matcherBytes / 2 ** 20).toFixed(1),
      Math.round(c.rate).toLocaleString('en-US'), `${(c.matched * 100).toFixed(0)}%`, `#${c.hitDepth}`, (c.rate / baseline).toFixed(2),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padStart(widths[c]!)).join('  '));
}
