// The conntrackd.conf the benchmarks generate for FTFW between two lab
// nodes: the transport block names both ends, the node's own traffic is
// never replicated, and each daemon's files are its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conntrackdConfig, conntrackdPaths, type ConntrackdOptions } from '../../bench/lib/conntrackd.js';

const paths = conntrackdPaths('/tmp/lab-x/conntrackd-n1');
const base: ConntrackdOptions = { host: 'n1', link: { dev: 'swab12-n1s', local: '10.9.0.1', peer: '10.9.0.2' } };

/** The lines of the named block (`Name {` … its closing brace), trimmed. */
function block(conf: string, name: string): string[] {
  const lines = conf.split('\n').map((l) => l.trim());
  const start = lines.findIndex((l) => l === `${name} {`);
  assert.ok(start >= 0, `no ${name} block in:\n${conf}`);
  const out: string[] = [];
  for (let i = start + 1, depth = 1; depth > 0; i++) {
    const l = lines[i]!;
    if (l.endsWith('{')) depth++;
    if (l === '}') depth--;
    if (depth > 0) out.push(l);
  }
  return out;
}

test('unicast UDP from the local address to the peer on the sync device', () => {
  const udp = block(conntrackdConfig(base, paths), 'UDP');
  assert.ok(udp.includes('IPv4_address 10.9.0.1'));
  assert.ok(udp.includes('IPv4_Destination_Address 10.9.0.2'));
  assert.ok(udp.includes('Interface swab12-n1s'));
  assert.ok(udp.includes('Port 3780'));
});

test('multicast joins the group on the local address', () => {
  const conf = conntrackdConfig({ ...base, link: { ...base.link, transport: 'multicast', group: '225.0.0.60', port: 3790 } }, paths);
  assert.ok(!conf.includes('UDP {'));
  const mc = block(conf, 'Multicast');
  assert.ok(mc.includes('IPv4_address 225.0.0.60'));
  assert.ok(mc.includes('Group 3790'));
  assert.ok(mc.includes('IPv4_interface 10.9.0.1'));
});

test('the sync addresses, loopback and the given local addresses are not replicated', () => {
  const ignore = block(conntrackdConfig({ ...base, ignoreAddresses: ['10.1.0.1', 'fd00:1::1'] }, paths), 'Address Ignore');
  assert.deepEqual(ignore, ['IPv4_address 127.0.0.1', 'IPv4_address 10.9.0.1', 'IPv4_address 10.9.0.2', 'IPv4_address 10.1.0.1', 'IPv6_address fd00:1::1']);
});

test('external cache and commit timeout only as asked', () => {
  assert.deepEqual(block(conntrackdConfig(base, paths), 'Mode FTFW'), ['DisableExternalCache Off']);
  assert.deepEqual(block(conntrackdConfig({ ...base, disableExternalCache: true, commitTimeoutS: 180 }, paths), 'Mode FTFW'), ['DisableExternalCache On', 'CommitTimeout 180']);
});

test("the lock file and control socket are the daemon's own", () => {
  const general = block(conntrackdConfig(base, paths), 'General');
  assert.ok(general.includes('LockFile /tmp/lab-x/conntrackd-n1/conntrackd.lock'));
  assert.ok(block(conntrackdConfig(base, paths), 'UNIX').includes('Path /tmp/lab-x/conntrackd-n1/conntrackd.ctl'));
});

test('a sync address that is not IPv4 is refused by name', () => {
  assert.throws(() => conntrackdConfig({ ...base, link: { ...base.link, peer: 'fd00:9::2' } }, paths), /peer address fd00:9::2/);
});
