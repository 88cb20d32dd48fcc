// The lab harness itself, with plain Linux forwarding in the firewall
// namespace and no syncwalld: if these fail, a failing single-node test says
// nothing about syncwall.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanupStale, createLab, type Lab } from './netns.js';
import { BPFFS_ROOT, LAB_RUN_DIR } from './paths.js';
import { run } from './processes.js';
import { SINGLE, singleFirewall } from './topology.js';
import { curl, CURL_OK, httpRequests, ping, startHttpServer, startStreamServer, startUdpEcho, tcpCounters, udpRequest, VerifiedStream } from './traffic.js';

let lab: Lab;

before(async () => {
  lab = await createLab({ topology: singleFirewall() });
});

after(async () => {
  await lab?.teardown();
});

async function namespaces(): Promise<string[]> {
  return (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
}

test('the lab has its namespaces, interfaces and forwarding', async () => {
  const all = await namespaces();
  for (const host of ['cli', 'fw', 'srv']) assert.ok(all.includes(`${lab.prefix}-${host}`), `namespace ${lab.prefix}-${host}`);
  assert.deepEqual(lab.firewallInterfaces('fw'), [
    { name: `${lab.prefix}-out`, zone: 'outside' },
    { name: `${lab.prefix}-in`, zone: 'inside' },
  ]);
  const fwd = await lab.execChecked('fw', ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']);
  assert.deepEqual(fwd.stdout.trim().split('\n'), ['1', '1']);
  const offload = await lab.execChecked('cli', ['ethtool', '-k', `${lab.prefix}-cli`]);
  assert.match(offload.stdout, /^tx-checksumming: off/m);
  assert.match(offload.stdout, /^generic-receive-offload: on/m);
});

test('ping v4 and v6 cross the firewall namespace', async () => {
  for (const addr of [SINGLE.server.v4, SINGLE.server.v6]) {
    const r = await ping(lab, 'cli', addr);
    assert.equal(r.received, r.transmitted, r.output);
  }
});

test('curl v4 and v6 connect with one SYN each, counted in the client namespace', async () => {
  const server = await startHttpServer(lab, 'srv', [80]);
  const before = await tcpCounters(lab, 'cli');
  for (const addr of [SINGLE.server.v4, SINGLE.server.v6]) {
    const r = await curl(lab, 'cli', addr, 80);
    assert.equal(r.code, CURL_OK, r.stderr);
    assert.match(r.stdout, /hello from port 80/);
  }
  const afterCurl = await tcpCounters(lab, 'cli');
  assert.equal(afterCurl.activeOpens - before.activeOpens, 2);
  assert.equal(afterCurl.synRetrans - before.synRetrans, 0);
  assert.equal(httpRequests(server, 80).length, 2);
});

test('UDP echo and the verified stream work', async () => {
  await startUdpEcho(lab, 'srv', 5353);
  assert.deepEqual(await udpRequest(lab, 'cli', SINGLE.server.v6, 5353), { sent: 3, received: 3 });
  await startStreamServer(lab, 'srv', 9000);
  const stream = await VerifiedStream.start(lab, 'cli', SINGLE.server.v4, 9000);
  await stream.waitForProgress(50_000, 20_000);
  const outcome = await stream.finish();
  assert.equal(outcome.failure, null);
  assert.equal(outcome.mismatches, 0);
  assert.ok(outcome.verified >= 50_000);
});

test('teardown removes a lab; cleanupStale reclaims one whose owner is gone', async () => {
  const other = await createLab({ topology: singleFirewall() });
  const pins = join(BPFFS_ROOT, other.prefix);
  mkdirSync(pins, { recursive: true });
  const leftover = other.spawn('srv', ['sleep', '60']);
  // Hand the lab to an owner that has exited, as after a killed test run.
  const dead = await run(['sh', '-c', 'echo $$']);
  writeFileSync(join(LAB_RUN_DIR, `${other.prefix}.pid`), dead.stdout);
  const reclaimed = await cleanupStale();
  assert.ok(reclaimed.includes(other.prefix));
  assert.ok(!reclaimed.includes(lab.prefix), 'a live lab is left alone');
  assert.ok(!(await namespaces()).some((ns) => ns.startsWith(`${other.prefix}-`)));
  assert.ok(!existsSync(pins));
  assert.ok(!existsSync(other.tmpDir));
  assert.equal((await leftover.exited).signal, 'SIGKILL');
  assert.ok((await namespaces()).includes(`${lab.prefix}-fw`));
});
