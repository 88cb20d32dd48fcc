// The `cluster:` config section: defaults, resolution (TLS paths relative to
// the config file), and every cross-field check with file:line:field.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../../control/src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'sw-cluster-config-'));
for (const f of ['ca.pem', 'node-1.pem', 'node-1-key.pem']) writeFileSync(join(dir, f), 'PEM\n');
const CONFIG_FILE = join(dir, 'syncwall.yaml');

const BASE = [
  'interfaces:', // 1
  '  - { name: eth0, zone: outside }',
  '  - { name: eth1, zone: inside }',
  'cluster:',
  '  id: lab1', // 5
  '  node_id: 1',
  '  listen: 10.9.0.1:7400',
  '  peers:',
  '    - { id: 2, address: 10.9.0.2:7400 }',
  '    - { id: 3, address: "[fd09::3]:7400" }', // 10
  '  tls: { ca: ca.pem, cert: node-1.pem, key: node-1-key.pem }',
  '  mac: 03:53:57:00:00:0A',
  '  addresses:',
  '    - { interface: eth0, address: 10.1.0.1 }',
  '    - { interface: eth1, address: fd00:1::1 }', // 15
];

function problemsOf(lines: string[]): string[] {
  try {
    parseConfig(lines.join('\n'), CONFIG_FILE);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.line}: ${p.field}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}

test('no cluster section: no cluster key at all (single node)', () => {
  const config = parseConfig('interfaces:\n  - { name: eth0, zone: outside }\n', CONFIG_FILE);
  assert.equal('cluster' in config, false);
});

test('a cluster section resolves with its defaults; TLS paths are relative to the config file', () => {
  const config = parseConfig(BASE.join('\n'), CONFIG_FILE);
  assert.deepEqual(config.cluster, {
    id: 'lab1',
    nodeId: 1,
    mode: 'load-sharing',
    backups: 1,
    listen: '10.9.0.1:7400',
    peers: [{ id: 2, address: '10.9.0.2:7400' }, { id: 3, address: '[fd09::3]:7400' }],
    tls: { ca: join(dir, 'ca.pem'), cert: join(dir, 'node-1.pem'), key: join(dir, 'node-1-key.pem') },
    mac: '03:53:57:00:00:0a',
    addresses: [{ interface: 'eth0', address: '10.1.0.1' }, { interface: 'eth1', address: 'fd00:1::1' }],
    heartbeatMs: 100,
    failureTimeoutMs: 400,
    sync: { node: 'combined', common: 'combined', periodicIntervalMs: 10000 },
  });
});

test('modes, backups, timings and sync modes are taken as given', () => {
  const config = parseConfig([
    ...BASE,
    '  mode: standby',
    '  backups: 2',
    '  heartbeat_ms: 50',
    '  failure_timeout_ms: 300',
    '  sync: { node: on-demand, common: periodic, periodic_interval_ms: 2000 }',
  ].join('\n'), CONFIG_FILE);
  assert.equal(config.cluster?.mode, 'standby');
  assert.equal(config.cluster?.backups, 2);
  assert.equal(config.cluster?.heartbeatMs, 50);
  assert.equal(config.cluster?.failureTimeoutMs, 300);
  assert.deepEqual(config.cluster?.sync, { node: 'on-demand', common: 'periodic', periodicIntervalMs: 2000 });
});

test('cluster problems are reported with line and field', () => {
  assert.deepEqual(problemsOf([
    'interfaces:', // 1
    '  - { name: eth0, zone: outside }',
    'cluster:',
    '  id: "lab 1"',
    '  node_id: 0', // 5
    '  mode: active',
    '  listen: 10.9.0.1',
    '  peers:',
    '    - { id: 2, address: 10.9.0.2:7400 }',
    '    - { id: 2, address: 10.9.0.3:99999 }', // 10
    '  tls: { ca: ca.pem, cert: node-1.pem, key: node-1-key.pem }',
    '  mac: 02:53:57:00:00:01',
    '  addresses:',
    '    - { interface: eth7, address: 10.1.0.1 }',
    '    - { interface: eth0, address: 10.1.0.300 }', // 15
    '  heartbeat_ms: 500',
    '  sync: { node: sometimes }',
  ]), [
    '4: cluster.id: expected 1-64 of [A-Za-z0-9_.-]',
    '5: cluster.node_id: expected an integer from 1 to 65535',
    '6: cluster.mode: expected load-sharing or standby',
    '7: cluster.listen: expected host:port (IPv6 as [addr]:port)',
    '10: cluster.peers[1].address: expected host:port (IPv6 as [addr]:port)',
    '12: cluster.mac: the cluster MAC must have the multicast bit set (first octet odd), so switches flood it to every node',
    '15: cluster.addresses[1].address: expected an IPv4 or IPv6 address',
    '17: cluster.sync.node: expected on-demand, periodic, combined or off',
  ]);
});

test('peer ids must be unique and differ from node_id; the failure timeout must exceed the heartbeat', () => {
  assert.deepEqual(problemsOf([
    ...BASE.slice(0, 8),
    '    - { id: 1, address: 10.9.0.2:7400 }', // 9
    '    - { id: 3, address: 10.9.0.3:7400 }',
    '    - { id: 3, address: 10.9.0.4:7400 }', // 11
    ...BASE.slice(10),
    '  failure_timeout_ms: 100',
  ]), [
    "9: cluster.peers[0].id: 1 is this node's node_id",
    '11: cluster.peers[2].id: peer id 3 is listed twice',
    '17: cluster.failure_timeout_ms: must be longer than heartbeat_ms (100)',
  ]);
});

test('cluster addresses must be on configured interfaces', () => {
  const lines = [...BASE];
  lines[13] = '    - { interface: eth5, address: 10.1.0.1 }';
  assert.deepEqual(problemsOf(lines), ['14: cluster.addresses[0].interface: interface "eth5" is not in interfaces (eth0, eth1)']);
});

test('unreadable TLS files are problems at their line; the CLI can skip the file checks', () => {
  const lines = [...BASE];
  lines[10] = '  tls: { ca: ca.pem, cert: missing.pem, key: . }';
  assert.deepEqual(problemsOf(lines), [
    `11: cluster.tls.cert: ${join(dir, 'missing.pem')} cannot be read (ENOENT)`,
    `11: cluster.tls.key: ${dir} is not a file`,
  ]);
  assert.equal(parseConfig(lines.join('\n'), CONFIG_FILE, { checkFiles: false }).cluster?.nodeId, 1);
});

test('unknown keys inside cluster list the allowed ones', () => {
  assert.deepEqual(problemsOf([...BASE, '  heartbeat: 5']), [
    '16: cluster.heartbeat: unknown key (expected one of id, node_id, mode, backups, listen, peers, tls, mac, addresses, heartbeat_ms, failure_timeout_ms, sync)',
  ]);
});
