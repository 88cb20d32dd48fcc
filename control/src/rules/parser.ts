// Parser for the rules file: one rule per logical line, an action followed
// by keywords in any order (each at most once). Every problem in the file is
// collected, each naming its line and keyword, before RulesError is thrown.

import { readFileSync } from 'node:fs';
import { parsePrefix } from './addr.js';
import { lexRules, type Token } from './lexer.js';
import { IFNAME, ZONE } from './names.js';
import { RulesError, type Problem } from './problem.js';
import type { Action, Family, PortRange, Prefix, Rule, RuleSet } from './types.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, parseProtocol } from '../net/protocols.js';

const ACTIONS: readonly Action[] = ['accept', 'drop', 'reject'];


/** ICMP type names by protocol: the same name has different numbers in ICMP and ICMPv6. */
const ICMP_TYPES: Record<number, Record<string, number>> = {
  [IPPROTO_ICMP]: {
    'echo-reply': 0, 'dest-unreachable': 3, redirect: 5, 'echo-request': 8,
    'router-advertisement': 9, 'router-solicitation': 10, 'time-exceeded': 11,
    'parameter-problem': 12, 'timestamp-request': 13, 'timestamp-reply': 14,
  },
  [IPPROTO_ICMPV6]: {
    'dest-unreachable': 1, 'packet-too-big': 2, 'time-exceeded': 3, 'parameter-problem': 4,
    'echo-request': 128, 'echo-reply': 129, 'router-solicitation': 133,
    'router-advertisement': 134, 'neighbour-solicitation': 135, 'neighbour-advertisement': 136,
  },
};


/** What the keywords of one line produced, before cross-keyword checks. */
interface Draft {
  proto?: number;
  family?: Family;
  src?: Prefix[];
  dst?: Prefix[];
  sport?: PortRange[];
  dport?: PortRange[];
  icmpType?: string;
  iif?: string[];
  zone?: string[];
  helper?: 'ftp';
  log?: boolean;
  comment?: string;
}

/** Parses one keyword's value into the draft; returns messages for what is wrong. */
type ValueParser = (value: Token, draft: Draft) => string[];

const KEYWORDS: Record<string, ValueParser | 'flag'> = {
  proto: (v, d) => {
    const proto = parseProtocol(v.text);
    if (proto === undefined) return [`"${v.text}" is not a protocol (tcp, udp, icmp, icmpv6 or 0-255)`];
    d.proto = proto;
    return [];
  },
  family: (v, d) => {
    if (v.text !== 'ipv4' && v.text !== 'ipv6') return [`"${v.text}" is not a family (ipv4 or ipv6)`];
    d.family = v.text === 'ipv4' ? 4 : 6;
    return [];
  },
  from: (v, d) => parseAddrs(v.text, (list) => { d.src = list; }),
  to: (v, d) => parseAddrs(v.text, (list) => { d.dst = list; }),
  sport: (v, d) => parsePorts(v.text, (list) => { d.sport = list; }),
  dport: (v, d) => parsePorts(v.text, (list) => { d.dport = list; }),
  'icmp-type': (v, d) => {
    d.icmpType = v.text;
    return [];
  },
  iif: (v, d) => parseNames(v.text, IFNAME, 'an interface name', (list) => { d.iif = list; }),
  zone: (v, d) => parseNames(v.text, ZONE, 'a zone name ([a-z0-9_-]+)', (list) => { d.zone = list; }),
  helper: (v, d) => {
    if (v.text !== 'ftp') return [`"${v.text}" is not a helper (ftp)`];
    d.helper = 'ftp';
    return [];
  },
  log: 'flag',
  comment: (v, d) => {
    if (!v.quoted) return [`expected a double-quoted string, got ${v.text}`];
    d.comment = v.text;
    return [];
  },
};

function parseIntIn(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

function parseAddrs(text: string, set: (list: Prefix[] | undefined) => void): string[] {
  if (text === 'any') {
    set(undefined);
    return [];
  }
  const list: Prefix[] = [];
  const errors: string[] = [];
  for (const item of text.split(',')) {
    const p = item === 'any' ? '"any" cannot be combined with addresses' : item === '' ? 'empty list element' : parsePrefix(item);
    if (typeof p === 'string') errors.push(p);
    else list.push(p);
  }
  if (errors.length === 0) set(list);
  return errors;
}

function parsePorts(text: string, set: (list: PortRange[]) => void): string[] {
  const list: PortRange[] = [];
  const errors: string[] = [];
  for (const item of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item);
    const lo = m ? parseIntIn(m[1]!, 0, 65535) : undefined;
    const hi = m ? (m[2] === undefined ? lo : parseIntIn(m[2], 0, 65535)) : undefined;
    if (lo === undefined || hi === undefined) errors.push(`"${item}" is not a port or range (0-65535)`);
    else if (lo > hi) errors.push(`"${item}": range start is above its end`);
    else list.push({ lo, hi });
  }
  if (errors.length === 0) set(list);
  return errors;
}

function parseNames(text: string, pattern: RegExp, what: string, set: (list: string[]) => void): string[] {
  const list = text.split(',');
  const errors = list.filter((n) => !pattern.test(n)).map((n) => `"${n}" is not ${what}`);
  if (errors.length === 0) set(list);
  return errors;
}

const familyName = (f: Family): string => (f === 4 ? 'IPv4' : 'IPv6');

/** Checks that need several keywords; turns the draft into a rule or adds problems. */
function finishRule(
  draft: Draft,
  base: Pick<Rule, 'id' | 'line' | 'action' | 'source'>,
  problem: (field: string, message: string) => void,
): Rule | undefined {
  let ok = true;
  const fail = (field: string, message: string): void => {
    problem(field, message);
    ok = false;
  };
  const { proto } = draft;

  for (const field of ['sport', 'dport'] as const) {
    if (draft[field] && proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) fail(field, 'ports need proto tcp or udp');
  }
  let icmpType: number | undefined;
  if (draft.icmpType !== undefined) {
    const names = proto === undefined ? undefined : ICMP_TYPES[proto];
    if (!names) fail('icmp-type', 'needs proto icmp or icmpv6');
    else {
      icmpType = names[draft.icmpType] ?? parseIntIn(draft.icmpType, 0, 255);
      if (icmpType === undefined) {
        fail('icmp-type', `"${draft.icmpType}" is not a type name (${Object.keys(names).join(', ')}) or 0-255`);
      }
    }
  }
  if (draft.helper && proto !== IPPROTO_TCP) fail('helper', 'ftp needs proto tcp');

  // Narrow the families step by step so the error names the keyword that
  // made the rule unable to match anything.
  let families: Family[] = proto === IPPROTO_ICMP ? [4] : proto === IPPROTO_ICMPV6 ? [6] : [4, 6];
  const narrow = (field: string, allowed: Family[], why: string): void => {
    const left = families.filter((f) => allowed.includes(f));
    if (left.length === 0) fail(field, why);
    else families = left;
  };
  if (draft.family) {
    narrow('family', [draft.family], `${familyName(draft.family)} conflicts with proto ${proto === IPPROTO_ICMP ? 'icmp' : 'icmpv6'}`);
  }
  for (const [field, list] of [['from', draft.src], ['to', draft.dst]] as const) {
    if (!list) continue;
    const wanted = families.map(familyName).join(' or ');
    narrow(field, list.map((p) => p.family), `no ${wanted} address in the list, so the rule can never match`);
  }
  if (!ok) return undefined;

  const rule: Rule = { ...base, families, log: draft.log === true };
  if (proto !== undefined) rule.proto = proto;
  if (draft.src) rule.src = draft.src;
  if (draft.dst) rule.dst = draft.dst;
  if (draft.sport) rule.sport = draft.sport;
  if (draft.dport) rule.dport = draft.dport;
  if (icmpType !== undefined) rule.icmpType = icmpType;
  if (draft.iif) rule.iif = draft.iif;
  if (draft.zone) rule.zone = draft.zone;
  if (draft.helper) rule.helper = draft.helper;
  if (draft.comment !== undefined) rule.comment = draft.comment;
  return rule;
}

/** Parses rules text; `file` names the source in errors. Throws RulesError listing every problem. */
export function parseRules(text: string, file: string): RuleSet {
  const { lines, problems: lexProblems } = lexRules(text);
  const problems: Problem[] = lexProblems.map((p) => ({ file, line: p.line, field: '', message: p.message }));
  const rules: Rule[] = [];

  for (const { line, tokens, source } of lines) {
    const problem = (field: string, message: string): void => { problems.push({ file, line, field, message }); };
    const before = problems.length;
    const [first, ...rest] = tokens;
    const action = ACTIONS.find((a) => a === first?.text);
    if (!action) problem('action', `"${first?.text}" is not an action (accept, drop, reject)`);

    const draft: Draft = {};
    const seen = new Set<string>();
    for (let i = 0; i < rest.length; i++) {
      const tok = rest[i]!;
      const parser = tok.quoted ? undefined : KEYWORDS[tok.text];
      if (!parser) {
        problem(tok.quoted ? '' : tok.text, tok.quoted
          ? `unexpected quoted string "${tok.text}" (only comment takes one)`
          : `unknown keyword (expected ${Object.keys(KEYWORDS).join(', ')})`);
        // Whatever follows up to the next keyword was probably its value.
        while (i + 1 < rest.length && !(rest[i + 1]!.text in KEYWORDS && !rest[i + 1]!.quoted)) i++;
        continue;
      }
      if (seen.has(tok.text)) problem(tok.text, 'given more than once');
      seen.add(tok.text);
      if (parser === 'flag') {
        draft.log = true;
        continue;
      }
      const value = rest[i + 1];
      if (!value || (!value.quoted && value.text in KEYWORDS)) {
        problem(tok.text, 'missing value');
        continue;
      }
      i++;
      for (const message of parser(value, draft)) problem(tok.text, message);
    }
    if (!action || problems.length > before) continue;
    const rule = finishRule(draft, { id: rules.length + 1, line, action, source }, problem);
    if (rule) rules.push(rule);
  }

  if (problems.length > 0) throw new RulesError(problems.sort((a, b) => a.line - b.line));
  return { file, rules };
}

/** Reads and parses a rules file; an unreadable file is a RulesError too. */
export function loadRulesFile(path: string): RuleSet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const message = `cannot read rules file: ${(err as Error).message}`;
    throw new RulesError([{ file: path, line: 0, field: '', message }], { cause: err });
  }
  return parseRules(text, path);
}
