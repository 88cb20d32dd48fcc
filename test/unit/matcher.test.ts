// Matcher semantics on small hand-written rule sets: first match wins, the
// implicit final drop, both families, prefixes, port ranges and lists,
// interfaces and zones, ICMP types. Each case runs against the compiled
// matcher and against the linear reference the randomized tests trust.

import assert from 'node:assert/strict';
import { test as nodeTest } from 'node:test';
import { parseAddress } from '../../control/src/rules/addr.js';
import { LinearMatcher } from '../../control/src/rules/linear-matcher.js';
import { compileMatcher } from '../../control/src/rules/matcher.js';
import { parseRules } from '../../control/src/rules/parser.js';
import type { FlowQuery, Matcher, RuleSet } from '../../control/src/rules/types.js';

interface Flow {
  proto?: number;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  icmpType?: number;
  iif?: string;
  zone?: string;
}

const IMPLEMENTATIONS: [string, (rules: RuleSet) => Matcher][] = [
  ['compiled', compileMatcher],
  ['linear', (rules) => new LinearMatcher(rules)],
];

for (const [implementation, build] of IMPLEMENTATIONS) {
  const test = (name: string, fn: () => void): void => { nodeTest(`${implementation}: ${name}`, fn); };

  /** Builds a matcher for `text`; returns a function giving the id of the rule a flow matches (undefined: dropped). */
  function matcherFor(text: string): (f: Flow) => number | undefined {
    const matcher = build(parseRules(text, 'rules.conf'));
    return (f) => {
      const src = parseAddress(f.src)!;
      const q: FlowQuery = {
        family: src.family, proto: f.proto ?? 6, src: src.addr, dst: parseAddress(f.dst)!.addr,
        sport: f.sport ?? 40000, dport: f.dport ?? 80, icmpType: f.icmpType ?? -1,
        iif: f.iif ?? 'eth0', zone: f.zone ?? 'outside',
      };
      return matcher.match(q)?.id;
    };
  }

  test('first match wins and unmatched flows hit the implicit drop', () => {
    const m = matcherFor([
      'drop proto tcp from 10.0.0.66',
      'accept proto tcp from 10.0.0.0/24 dport 80',
      'reject proto tcp from 10.0.0.0/24',
    ].join('\n'));
    assert.equal(m({ src: '10.0.0.66', dst: '192.0.2.1' }), 1);
    assert.equal(m({ src: '10.0.0.5', dst: '192.0.2.1' }), 2);
    assert.equal(m({ src: '10.0.0.5', dst: '192.0.2.1', dport: 81 }), 3);
    assert.equal(m({ src: '10.0.1.5', dst: '192.0.2.1' }), undefined);
    assert.equal(m({ src: '10.0.0.5', dst: '192.0.2.1', proto: 17 }), undefined);
  });

  test('a later, more specific rule does not beat an earlier broad one', () => {
    const m = matcherFor('drop to 192.0.2.0/24\naccept proto tcp to 192.0.2.7 dport 80');
    assert.equal(m({ src: '10.0.0.1', dst: '192.0.2.7' }), 1);
  });

  test('IPv4 and IPv6 prefixes, mixed lists and families', () => {
    const m = matcherFor([
      'accept to 192.0.2.0/24,2001:db8:1::/48',
      'accept family ipv6 proto udp',
      'accept from 0.0.0.0/0',
      'accept from ::/0 to 2001:db8:ffff::1',
    ].join('\n'));
    assert.equal(m({ src: '10.0.0.1', dst: '192.0.2.200' }), 1);
    assert.equal(m({ src: '2001:db8::1', dst: '2001:db8:1:2::3' }), 1);
    assert.equal(m({ src: '2001:db8::1', dst: '2001:db8:2::3', proto: 17 }), 2);
    assert.equal(m({ src: '10.0.0.1', dst: '198.51.100.1', proto: 17 }), 3);
    assert.equal(m({ src: '2001:db8::1', dst: '2001:db8:ffff::1' }), 4);
    assert.equal(m({ src: '2001:db8::1', dst: '2001:db8:ffff::2' }), undefined);
    // An IPv4-mapped IPv6 address is IPv6, not the IPv4 prefix.
    assert.equal(m({ src: '2001:db8::1', dst: '::ffff:192.0.2.1' }), undefined);
  });

  test('a rule without addresses matches both families; a rule with only v4 addresses matches only v4', () => {
    const m = matcherFor('accept proto tcp dport 22\naccept proto tcp from 10.0.0.0/8,192.168.0.0/16 dport 23');
    assert.equal(m({ src: '10.1.1.1', dst: '10.2.2.2', dport: 22 }), 1);
    assert.equal(m({ src: '2001:db8::1', dst: '2001:db8::2', dport: 22 }), 1);
    assert.equal(m({ src: '192.168.3.3', dst: '10.2.2.2', dport: 23 }), 2);
    assert.equal(m({ src: '2001:db8::1', dst: '2001:db8::2', dport: 23 }), undefined);
  });

  test('port lists and ranges, source and destination, at their edges', () => {
    const m = matcherFor([
      'accept proto tcp dport 80,443,8000-8100',
      'accept proto udp sport 1024-65535 dport 53',
      'accept proto udp dport 0-1',
    ].join('\n'));
    for (const [dport, id] of [[80, 1], [443, 1], [7999, undefined], [8000, 1], [8050, 1], [8100, 1], [8101, undefined], [81, undefined]] as const) {
      assert.equal(m({ src: '10.0.0.1', dst: '10.0.0.2', dport }), id, `tcp dport ${dport}`);
    }
    assert.equal(m({ proto: 17, src: '10.0.0.1', dst: '10.0.0.2', sport: 1024, dport: 53 }), 2);
    assert.equal(m({ proto: 17, src: '10.0.0.1', dst: '10.0.0.2', sport: 65535, dport: 53 }), 2);
    assert.equal(m({ proto: 17, src: '10.0.0.1', dst: '10.0.0.2', sport: 1023, dport: 53 }), undefined);
    assert.equal(m({ proto: 17, src: '10.0.0.1', dst: '10.0.0.2', dport: 0 }), 3);
    assert.equal(m({ proto: 17, src: '10.0.0.1', dst: '10.0.0.2', dport: 1 }), 3);
    assert.equal(m({ proto: 17, src: '10.0.0.1', dst: '10.0.0.2', dport: 2 }), undefined);
  });

  test('interfaces and zones, alone and as lists', () => {
    const m = matcherFor('accept iif eth1,eth2 zone dmz\naccept zone inside\ndrop iif eth3');
    assert.equal(m({ src: '10.0.0.1', dst: '10.0.0.2', iif: 'eth2', zone: 'dmz' }), 1);
    assert.equal(m({ src: '10.0.0.1', dst: '10.0.0.2', iif: 'eth0', zone: 'dmz' }), undefined);
    assert.equal(m({ src: '10.0.0.1', dst: '10.0.0.2', iif: 'eth1', zone: 'inside' }), 2);
    assert.equal(m({ src: '10.0.0.1', dst: '10.0.0.2', iif: 'eth3', zone: 'outside' }), 3);
    assert.equal(m({ src: '10.0.0.1', dst: '10.0.0.2', iif: 'unknown0', zone: 'unknown' }), undefined);
  });

  test('ICMP types by family, and protocols without ports', () => {
    const m = matcherFor([
      'accept proto icmp icmp-type echo-request',
      'accept proto icmpv6 icmp-type echo-request',
      'drop proto icmp',
      'accept proto 47',
    ].join('\n'));
    assert.equal(m({ proto: 1, src: '10.0.0.1', dst: '10.0.0.2', icmpType: 8 }), 1);
    assert.equal(m({ proto: 1, src: '10.0.0.1', dst: '10.0.0.2', icmpType: 0 }), 3);
    assert.equal(m({ proto: 58, src: '2001:db8::1', dst: '2001:db8::2', icmpType: 128 }), 2);
    assert.equal(m({ proto: 58, src: '2001:db8::1', dst: '2001:db8::2', icmpType: 8 }), undefined);
    assert.equal(m({ proto: 47, src: '10.0.0.1', dst: '10.0.0.2', sport: 0, dport: 0 }), 4);
  });

  test('equal prefixes written differently, and /0, are the same condition', () => {
    const m = matcherFor('accept proto udp from 2001:db8::/32 dport 1\naccept proto tcp from 2001:0DB8:0::/32 dport 2\naccept proto tcp from ::/0 dport 3');
    assert.equal(m({ src: '2001:db8::9', dst: '2001:db8::2', dport: 2 }), 2);
    assert.equal(m({ src: '2001:db9::9', dst: '2001:db8::2', dport: 3 }), 3);
  });

  test('an empty rule set drops everything', () => {
    assert.equal(matcherFor('# nothing\n')({ src: '10.0.0.1', dst: '10.0.0.2' }), undefined);
  });

  test('an address that differs from a lone host prefix only inside a run of bytes shared by no other prefix does not match', () => {
    const m = matcherFor('accept to 2001:db8::1:0:0:5\naccept proto udp to 10.1.2.3');
    assert.equal(m({ src: '2001:db8::9', dst: '2001:db8::1:0:0:5' }), 1);
    assert.equal(m({ src: '2001:db8::9', dst: '2001:db8::5' }), undefined);
    assert.equal(m({ src: '2001:db8::9', dst: '2001:db9::1:0:0:5' }), undefined);
    assert.equal(m({ proto: 17, src: '10.0.0.1', dst: '10.1.2.3' }), 2);
    assert.equal(m({ proto: 17, src: '10.0.0.1', dst: '10.9.2.3' }), undefined);
  });
}
