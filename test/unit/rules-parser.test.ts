// Rules parser: what good files produce, and that every kind of mistake is
// reported with its file, line and keyword, all of them in one pass.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRulesFile, parseRules } from '../../control/src/rules/parser.js';
import { RulesError, type Problem } from '../../control/src/rules/problem.js';

/** The problems parsing `text` reports, as `line: field: message` strings. */
function problemsOf(text: string): string[] {
  try {
    parseRules(text, 'rules.conf');
  } catch (err) {
    assert.ok(err instanceof RulesError);
    for (const p of err.problems) assert.equal(p.file, 'rules.conf');
    return err.problems.map((p: Problem) => `${p.line}: ${p.field}: ${p.message}`);
  }
  return [];
}

/** The single problem `line` (one rule) reports. */
function onlyProblem(line: string): string {
  const problems = problemsOf(line);
  assert.equal(problems.length, 1, `expected one problem for ${JSON.stringify(line)}, got ${JSON.stringify(problems)}`);
  return problems[0]!;
}

test('a good file: ids are positions, comments, blank lines and continuations handled', () => {
  const { file, rules } = parseRules([
    '# header comment',
    '',
    'accept proto tcp from 10.0.0.0/8,2001:db8::/32 sport 1024-65535 to 192.0.2.1 dport 80,443,8000-8100 \\',
    '    log comment "web # not a comment"   # trailing comment',
    'reject proto udp dport 53 iif eth0,eth1 zone inside,dmz',
    'drop proto icmpv6 icmp-type echo-request',
    'accept proto tcp dport 21 helper ftp family ipv4',
    'drop proto 47',
    'accept',
  ].join('\n'), 'rules.conf');
  assert.equal(file, 'rules.conf');
  assert.deepEqual(rules.map((r) => [r.id, r.line, r.action]), [
    [1, 3, 'accept'], [2, 5, 'reject'], [3, 6, 'drop'], [4, 7, 'accept'], [5, 8, 'drop'], [6, 9, 'accept'],
  ]);
  const [web, dns, ping, ftp, gre, any] = rules;
  assert.equal(web!.proto, 6);
  assert.deepEqual(web!.src!.map((p) => [p.family, p.len, p.text]), [[4, 8, '10.0.0.0/8'], [6, 32, '2001:db8::/32']]);
  assert.deepEqual(web!.dst!.map((p) => [p.family, p.len, [...p.addr.slice(0, 4)]]), [[4, 32, [192, 0, 2, 1]]]);
  assert.deepEqual(web!.families, [4]);
  assert.deepEqual(web!.sport, [{ lo: 1024, hi: 65535 }]);
  assert.deepEqual(web!.dport, [{ lo: 80, hi: 80 }, { lo: 443, hi: 443 }, { lo: 8000, hi: 8100 }]);
  assert.equal(web!.log, true);
  assert.equal(web!.comment, 'web # not a comment');
  assert.match(web!.source, /^accept proto tcp .* log comment "web # not a comment"$/);
  assert.deepEqual([dns!.proto, dns!.iif, dns!.zone, dns!.families], [17, ['eth0', 'eth1'], ['inside', 'dmz'], [4, 6]]);
  assert.deepEqual([ping!.proto, ping!.icmpType, ping!.families], [58, 128, [6]]);
  assert.deepEqual([ftp!.helper, ftp!.families], ['ftp', [4]]);
  assert.equal(gre!.proto, 47);
  assert.deepEqual([any!.proto, any!.src, any!.families, any!.log], [undefined, undefined, [4, 6], false]);
});

test('icmp-type names map by protocol', () => {
  const types = (proto: string) => ['echo-request', 'echo-reply', 'dest-unreachable', 'time-exceeded', '42']
    .map((t) => parseRules(`accept proto ${proto} icmp-type ${t}`, 'r').rules[0]!.icmpType);
  assert.deepEqual(types('icmp'), [8, 0, 3, 11, 42]);
  assert.deepEqual(types('icmpv6'), [128, 129, 1, 3, 42]);
});

test('from any / to any means no address condition', () => {
  const [rule] = parseRules('accept from any to any', 'r').rules;
  assert.equal(rule!.src, undefined);
  assert.equal(rule!.dst, undefined);
});

test('every problem in the file is reported, in line order, with its line and keyword', () => {
  assert.deepEqual(problemsOf([
    'accept proto tcp dport 80',
    'acept proto tcp',
    '',
    'accept proto tcp dport 80-',
    '# comment',
    'accept proto tcp \\',
    '    from 10.0.0.1/8',
  ].join('\n')), [
    '2: action: "acept" is not an action (accept, drop, reject)',
    '4: dport: "80-" is not a port or range (0-65535)',
    '6: from: "10.0.0.1/8" has host bits set beyond /8',
  ]);
});

test('each keyword reports its own mistakes', () => {
  const cases: [string, string][] = [
    ['accept proto tcpp', 'proto: "tcpp" is not a protocol (tcp, udp, icmp, icmpv6 or 0-255)'],
    ['accept proto 256', 'proto: "256" is not a protocol (tcp, udp, icmp, icmpv6 or 0-255)'],
    ['accept family ipv5', 'family: "ipv5" is not a family (ipv4 or ipv6)'],
    ['accept from 10.0.0.256', 'from: "10.0.0.256" is not an IPv4 or IPv6 address or prefix'],
    ['accept from 10.0.0.0/33', 'from: "10.0.0.0/33": prefix length must be 0..32'],
    ['accept to 2001:db8::1/32', 'to: "2001:db8::1/32" has host bits set beyond /32'],
    ['accept to 10.0.0.0/8,,10.1.0.0/16', 'to: empty list element'],
    ['accept to any,10.0.0.0/8', 'to: "any" cannot be combined with addresses'],
    ['accept proto udp sport 70000', 'sport: "70000" is not a port or range (0-65535)'],
    ['accept proto udp dport 90-80', 'dport: "90-80": range start is above its end'],
    ['accept proto icmp dport 80', 'dport: ports need proto tcp or udp'],
    ['accept sport 80', 'sport: ports need proto tcp or udp'],
    ['accept proto tcp icmp-type echo-request', 'icmp-type: needs proto icmp or icmpv6'],
    ['accept proto icmp icmp-type echo', 'icmp-type: "echo" is not a type name (echo-reply, dest-unreachable, redirect, echo-request, router-advertisement, router-solicitation, time-exceeded, parameter-problem, timestamp-request, timestamp-reply) or 0-255'],
    ['accept iif eth0,bad/name', 'iif: "bad/name" is not an interface name'],
    ['accept zone Inside', 'zone: "Inside" is not a zone name ([a-z0-9_-]+)'],
    ['accept proto tcp helper tftp', 'helper: "tftp" is not a helper (ftp)'],
    ['accept proto udp helper ftp', 'helper: ftp needs proto tcp'],
    ['accept comment bare', 'comment: expected a double-quoted string, got bare'],
    ['accept comment "open', ': unterminated quoted string'],
    ['accept "stray"', ': unexpected quoted string "stray" (only comment takes one)'],
    ['accept proto tcp proto udp', 'proto: given more than once'],
    ['accept log log', 'log: given more than once'],
    ['accept proto tcp dport', 'dport: missing value'],
    ['accept from to 10.0.0.0/8', 'from: missing value'],
    ['accept proto icmp family ipv6', 'family: IPv6 conflicts with proto icmp'],
    ['accept proto icmpv6 to 10.0.0.1', 'to: no IPv6 address in the list, so the rule can never match'],
    ['accept from 10.0.0.0/8 to 2001:db8::/32', 'to: no IPv4 address in the list, so the rule can never match'],
  ];
  for (const [line, expected] of cases) assert.equal(onlyProblem(line), `1: ${expected}`, line);
});

test('an unknown keyword is named, and the value after it is not reported again', () => {
  assert.match(onlyProblem('accept proto tcp dprot 22 log'), /^1: dprot: unknown keyword \(expected proto, family, .*comment\)$/);
});

test('the error message lists file:line: field: message lines', () => {
  assert.throws(() => parseRules('accept\ndrop proto tcp dport 80-\n', 'rules.conf'), (err: unknown) => {
    assert.ok(err instanceof RulesError);
    assert.equal(err.name, 'RulesError');
    assert.equal(err.message, 'rules.conf:2: dport: "80-" is not a port or range (0-65535)');
    return true;
  });
});

test('loadRulesFile reads a file and names it in errors; an unreadable file is a RulesError', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-rules-'));
  const good = join(dir, 'good.conf');
  writeFileSync(good, 'accept proto tcp dport 22\n');
  assert.equal(loadRulesFile(good).rules.length, 1);
  assert.equal(loadRulesFile(good).file, good);

  const bad = join(dir, 'bad.conf');
  writeFileSync(bad, '\n\nallow\n');
  assert.throws(() => loadRulesFile(bad), { name: 'RulesError', message: `${bad}:3: action: "allow" is not an action (accept, drop, reject)` });

  const missing = join(dir, 'missing.conf');
  assert.throws(() => loadRulesFile(missing), (err: unknown) => {
    assert.ok(err instanceof RulesError);
    assert.equal(err.problems[0]!.line, 0);
    assert.match(err.message, new RegExp(`^${missing}: cannot read rules file: ENOENT`));
    assert.ok(err.cause instanceof Error);
    return true;
  });
});

test('the example rules file parses', () => {
  assert.ok(loadRulesFile(new URL('../../examples/rules.conf', import.meta.url).pathname).rules.length > 5);
});
