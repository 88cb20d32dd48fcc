// Config resolver: defaults, path resolution, and every kind of problem
// reported with file, line and field path, all in one pass.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkRulesAgainstConfig, ConfigError, loadConfig, parseConfig } from '../../control/src/config/load.js';
import { parseRules } from '../../control/src/rules/parser.js';

const MINIMAL = 'interfaces:\n  - name: eth0\n    zone: outside\n';

/** The problems parsing `text` reports, as `line: field: message` strings. */
function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'syncwall.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    for (const p of err.problems) assert.equal(p.file, 'syncwall.yaml');
    return err.problems.map((p) => `${p.line}: ${p.field}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}

test('a minimal file gets every default; relative paths resolve against the config directory', () => {
  const config = parseConfig(MINIMAL, '/etc/syncwall/syncwall.yaml');
  assert.deepEqual(config, {
    configFile: '/etc/syncwall/syncwall.yaml',
    instance: 'default',
    bpffs: '/sys/fs/bpf/syncwall',
    interfaces: [{ name: 'eth0', zone: 'outside' }],
    xdpMode: 'native',
    rules: '/etc/syncwall/rules.conf',
    management: { socket: '/run/syncwall/syncwalld.sock' },
    tables: { connections: 262144 },
    punt: { rate: 20000, burst: 2000 },
    fastForward: true,
    lastSeenGranularityMs: 1000,
    timeouts: {
      tcpSynSent: 120, tcpSynRecv: 60, tcpEstablished: 432000, tcpFinWait: 120, tcpCloseWait: 60,
      tcpLastAck: 30, tcpTimeWait: 120, tcpClose: 10, udpUnreplied: 30, udpReplied: 180, icmp: 30,
      genericUnreplied: 30, genericReplied: 600,
    },
    expiry: { sweepIntervalMs: 1000, batch: 4096 },
    helpers: { holdTimeoutMs: 50 },
    logLevel: 'info',
  });
});

test('given values override defaults, section by section', () => {
  const config = parseConfig([
    'instance: lab-1',
    'interfaces:',
    '  - { name: veth0, zone: outside }',
    '  - { name: veth1, zone: inside }',
    'xdp_mode: generic',
    'rules: ../rules/lab.conf',
    'management: { socket: run/sw.sock }',
    'tables: { connections: 1024 }',
    'punt: { rate: 5 }',
    'fast_forward: false',
    'timeouts: { tcp_established: 3600 }',
    'log: { level: debug }',
  ].join('\n'), '/srv/lab/etc/syncwall.yaml');
  assert.equal(config.instance, 'lab-1');
  assert.equal(config.interfaces.length, 2);
  assert.equal(config.xdpMode, 'generic');
  assert.equal(config.rules, '/srv/lab/rules/lab.conf');
  assert.equal(config.management.socket, '/srv/lab/etc/run/sw.sock');
  assert.equal(config.tables.connections, 1024);
  assert.deepEqual(config.punt, { rate: 5, burst: 2000 });
  assert.equal(config.fastForward, false);
  assert.equal(config.timeouts.tcpEstablished, 3600);
  assert.equal(config.timeouts.tcpSynSent, 120);
  assert.equal(config.logLevel, 'debug');
});

test('every problem is reported with its line and field path', () => {
  assert.deepEqual(problemsOf([
    'instance: Bad!', // 1
    'bpffs: relative/dir',
    'interfaces:',
    '  - name: eth0',
    '    zone: outside', // 5
    '  - name: eth0',
    '    zone: In side',
    '  - name: this-name-is-far-too-long',
    '    zone: dmz',
    'xdp_mode: fast', // 10
    'tables:',
    '  connections: 12',
    'punt:',
    '  rate: -5',
    '  burst: 1.5', // 15
    'fast_forward: yes',
    'last_seen_granularity_ms: 0',
    'timeouts:',
    '  tcp_syn_sent: abc',
    'expiry:', // 20
    '  batch: 0',
    'log:',
    '  level: loud',
  ].join('\n')), [
    '1: instance: expected 1-32 of [a-z0-9_-]',
    '2: bpffs: expected an absolute path',
    '6: interfaces[1].name: interface "eth0" is listed twice',
    '7: interfaces[1].zone: expected a zone name ([a-z0-9_-]+)',
    '8: interfaces[2].name: expected an interface name (up to 15 of A-Z a-z 0-9 _ . @ -)',
    '10: xdp_mode: expected native or generic',
    '12: tables.connections: expected an integer from 1024 to 16777216',
    '14: punt.rate: expected a positive integer',
    '15: punt.burst: expected a positive integer',
    '16: fast_forward: expected true or false',
    '17: last_seen_granularity_ms: expected a positive integer',
    '19: timeouts.tcp_syn_sent: expected a positive integer',
    '21: expiry.batch: expected an integer from 1 to 1048576',
    '23: log.level: expected trace, debug, info, warn or error',
  ]);
});

test('unknown keys are errors at every level, with the keys that are allowed', () => {
  assert.deepEqual(problemsOf([
    'interfaces:',
    '  - name: eth0',
    '    zone: outside',
    '    mtu: 9000',
    'punt:',
    '  rtae: 5',
    'fastforward: true',
  ].join('\n')), [
    '4: interfaces[0].mtu: unknown key (expected one of name, zone)',
    '6: punt.rtae: unknown key (expected one of rate, burst)',
    '7: fastforward: unknown key (expected one of instance, bpffs, interfaces, xdp_mode, rules, management, tables, punt, fast_forward, last_seen_granularity_ms, timeouts, expiry, helpers, log, cluster)',
  ]);
});

test('missing, empty and mistyped sections', () => {
  assert.deepEqual(problemsOf(''), ['0: interfaces: is required']);
  assert.deepEqual(problemsOf('log: { level: info }\n'), ['1: interfaces: is required']);
  assert.deepEqual(problemsOf('interfaces: []\n'), ['1: interfaces: at least one interface is required']);
  assert.deepEqual(problemsOf('interfaces: eth0\n'), ['1: interfaces: expected a list of interfaces']);
  assert.deepEqual(problemsOf(`${MINIMAL}management:\n`), ['4: management: expected a mapping']);
  assert.deepEqual(problemsOf('interfaces:\n  - name: eth0\n'), ['2: interfaces[0].zone: is required']);
  assert.deepEqual(problemsOf('- 1\n- 2\n'), ['1: : expected a mapping']);
});

test('YAML syntax errors and duplicate keys name their line', () => {
  assert.deepEqual(problemsOf(`${MINIMAL}xdp_mode: native: x\nlog: 1\n`), ['4: : Nested mappings are not allowed in compact mappings']);
  const [duplicate] = problemsOf(`${MINIMAL}xdp_mode: native\nxdp_mode: generic\n`);
  assert.match(duplicate!, /^5: : Map keys must be unique/);
});

test('ConfigError message is file:line: field: message lines', () => {
  assert.throws(() => parseConfig(`${MINIMAL}punt:\n  rate: 0\n`, 'syncwall.yaml'), {
    name: 'ConfigError',
    message: 'syncwall.yaml:5: punt.rate: expected a positive integer',
  });
});

test('loadConfig reads a file; an unreadable file is a ConfigError naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-config-'));
  const path = join(dir, 'syncwall.yaml');
  writeFileSync(path, MINIMAL);
  const config = loadConfig(path);
  assert.equal(config.configFile, path);
  assert.equal(config.rules, join(dir, 'rules.conf'));
  assert.throws(() => loadConfig(join(dir, 'missing.yaml')), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /missing\.yaml: cannot read config file: ENOENT/);
    assert.ok(err.cause instanceof Error);
    return true;
  });
});

test('rules naming interfaces or zones the config lacks are reported with the rule line', () => {
  const config = parseConfig('interfaces:\n  - { name: eth0, zone: outside }\n  - { name: eth1, zone: inside }\n', '/etc/sw/syncwall.yaml');
  const rules = parseRules('accept iif eth0 zone inside\n\naccept iif eth0,eth9\naccept zone dmz,inside\n', 'rules.conf');
  assert.deepEqual(checkRulesAgainstConfig(config, rules), [
    { file: 'rules.conf', line: 3, field: 'iif', message: 'interface "eth9" is not in /etc/sw/syncwall.yaml (eth0, eth1)' },
    { file: 'rules.conf', line: 4, field: 'zone', message: 'zone "dmz" is not in /etc/sw/syncwall.yaml (outside, inside)' },
  ]);
});

test('the example config and rules load and agree', () => {
  const config = loadConfig(new URL('../../examples/syncwall.yaml', import.meta.url).pathname);
  assert.deepEqual(config.interfaces.map((i) => i.name), ['eth0', 'eth1']);
  const rules = parseRules('accept', 'x');
  assert.deepEqual(checkRulesAgainstConfig(config, rules), []);
});
