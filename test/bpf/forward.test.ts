// Fast forwarding (bpf_fib_lookup + redirect) and the local-destination
// check need a FIB the test controls: a namespace of its own with two veths,
// forwarding on and permanent neighbours. The fixtures run in a child inside
// it (forward-probe.ts); this file builds and always removes the namespace.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IN_DEV, OUT_DEV, OUT_MAC, OUT_MTU, SERVER_MAC } from './forward-topology.js';
import { SERVER4, SERVER6 } from './packets.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** This file's namespaces: `swfib` and four hex digits ('i' keeps them apart from the labs' `sw<hex>`). */
const NS_PATTERN = /^swfib[0-9a-f]{4}$/;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function namespaces(): string[] {
  return ip('netns', 'list').split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => NS_PATTERN.test(n));
}

describe('fast forwarding in a namespace', { timeout: 60_000 }, () => {
  const ns = `swfib${randomBytes(2).toString('hex')}`;
  const inNs = (...args: string[]): string => ip('-n', ns, ...args);

  before(() => {
    for (const stale of namespaces()) ip('netns', 'del', stale);
    ip('netns', 'add', ns);
    inNs('link', 'set', 'lo', 'up');
    inNs('link', 'add', IN_DEV, 'type', 'veth', 'peer', 'name', 'in-peer');
    inNs('link', 'add', OUT_DEV, 'address', OUT_MAC, 'mtu', String(OUT_MTU), 'type', 'veth', 'peer', 'name', 'out-peer');
    for (const dev of [IN_DEV, 'in-peer', OUT_DEV, 'out-peer']) inNs('link', 'set', dev, 'up');
    inNs('addr', 'add', '198.51.100.1/24', 'dev', IN_DEV);
    inNs('addr', 'add', '2001:db8:1::1/64', 'dev', IN_DEV, 'nodad');
    inNs('addr', 'add', '203.0.113.1/24', 'dev', OUT_DEV);
    inNs('addr', 'add', '2001:db8:2::1/64', 'dev', OUT_DEV, 'nodad');
    inNs('neigh', 'replace', SERVER4, 'lladdr', SERVER_MAC, 'nud', 'permanent', 'dev', OUT_DEV);
    inNs('neigh', 'replace', SERVER6, 'lladdr', SERVER_MAC, 'nud', 'permanent', 'dev', OUT_DEV);
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  });

  after(() => {
    if (namespaces().includes(ns)) ip('netns', 'del', ns);
  });

  it('redirects with rewritten headers, and leaves TTL 1, no neighbour, MTU, VLAN and local traffic to the stack', () => {
    const child = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', 'test/bpf/forward-probe.ts'], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 45_000,
    });
    assert.equal(child.status, 0, `forward probe failed:\n${child.stderr}${child.stdout}`);
  });
});
