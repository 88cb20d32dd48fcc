// The rules read literally: try each rule in file order, return the first
// whose every given field accepts the flow. Its cost grows with the rule
// count, so the daemon uses the compiled matcher; this one is the reference
// the compiled matcher is checked against (the unit tests, and the rules
// benchmark's check of the flows it decides).

import type { FlowQuery, Matcher, Prefix, PortRange, Rule, RuleSet } from './types.js';

function inPrefix(p: Prefix, family: number, addr: Uint8Array): boolean {
  if (p.family !== family) return false;
  const whole = p.len >> 3;
  for (let i = 0; i < whole; i++) if (p.addr[i] !== addr[i]) return false;
  const rest = p.len & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[whole]! & mask) === p.addr[whole];
}

const inRanges = (ranges: readonly PortRange[] | undefined, port: number): boolean =>
  !ranges || ranges.some((r) => port >= r.lo && port <= r.hi);

const inPrefixes = (prefixes: readonly Prefix[] | undefined, family: number, addr: Uint8Array): boolean =>
  !prefixes || prefixes.some((p) => inPrefix(p, family, addr));

/** True if `rule` on its own accepts `q` (ignoring the rules before it). */
export function ruleAccepts(rule: Rule, q: FlowQuery): boolean {
  return rule.families.includes(q.family)
    && (rule.proto === undefined || rule.proto === q.proto)
    && inPrefixes(rule.src, q.family, q.src)
    && inPrefixes(rule.dst, q.family, q.dst)
    && inRanges(rule.sport, q.sport)
    && inRanges(rule.dport, q.dport)
    && (rule.icmpType === undefined || rule.icmpType === q.icmpType)
    && (!rule.iif || rule.iif.includes(q.iif))
    && (!rule.zone || rule.zone.includes(q.zone));
}

export class LinearMatcher implements Matcher {
  constructor(private readonly ruleSet: RuleSet) {}

  match(q: FlowQuery): Rule | undefined {
    return this.ruleSet.rules.find((r) => ruleAccepts(r, q));
  }
}
