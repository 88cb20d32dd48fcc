// The cluster lab's topology and traffic tool with plain Linux forwarding
// and no syncwalld: one node holds the cluster addresses as ordinary
// addresses (as a VRRP master would). If these fail, a failing cluster test
// says nothing about syncwall.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLab, type Lab } from './netns.js';
import { CLUSTER, clusterNode, clusterTopology } from './topology.js';
import { fleetSummary, ping, startStreamServer, StreamFleet } from './traffic.js';

const NODES = 3;
const STREAM_PORT = 9000;
let lab: Lab;

before(async () => {
  lab = await createLab({ topology: clusterTopology(NODES) });
});

after(async () => {
  await lab?.teardown();
});

/** Gives a node the cluster addresses as its own; the endpoints forget the old holder's MAC. */
async function holdClusterAddresses(id: number, action: 'add' | 'del'): Promise<void> {
  const n = clusterNode(id);
  const plan = [
    [n.dev.outside, `${CLUSTER.outside.v4}/24`],
    [n.dev.outside, `${CLUSTER.outside.v6}/64`],
    [n.dev.inside, `${CLUSTER.inside.v4}/24`],
    [n.dev.inside, `${CLUSTER.inside.v6}/64`],
  ] as const;
  for (const [dev, addr] of plan) {
    await lab.execChecked(n.host, ['ip', 'addr', action, addr, 'dev', lab.dev({ dev }), ...(action === 'add' && addr.includes(':') ? ['nodad'] : [])]);
  }
  for (const host of ['cli', 'srv']) await lab.execChecked(host, ['ip', 'neigh', 'flush', 'all']);
}

test('bridges flood multicast, nodes forward, every node has its own and its sync address', async () => {
  for (const bridge of ['bro', 'bri', 'brs']) {
    const out = await lab.execChecked('sw', ['ip', '-j', '-d', 'link', 'show', 'dev', lab.dev({ dev: bridge })]);
    const info = (JSON.parse(out.stdout) as { linkinfo: { info_data: { mcast_snooping: number } } }[])[0]!;
    assert.equal(info.linkinfo.info_data.mcast_snooping, 0, `${bridge} floods multicast`);
  }
  assert.deepEqual(lab.firewallInterfaces('n2'), [
    { name: `${lab.prefix}-n2o`, zone: 'outside' },
    { name: `${lab.prefix}-n2i`, zone: 'inside' },
  ]);
  for (let id = 1; id <= NODES; id++) {
    const n = clusterNode(id);
    const fwd = await lab.execChecked(n.host, ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']);
    assert.deepEqual(fwd.stdout.trim().split('\n'), ['1', '1']);
    const peer = clusterNode((id % NODES) + 1);
    assert.equal((await ping(lab, n.host, peer.sync, { count: 1 })).received, 1, `sync ${n.sync} -> ${peer.sync}`);
    assert.equal((await ping(lab, 'cli', n.outside.v6, { count: 1 })).received, 1, `client -> ${n.outside.v6}`);
    assert.equal((await ping(lab, 'srv', n.inside.v4, { count: 1 })).received, 1, `server -> ${n.inside.v4}`);
  }
});

test('200 verified streams survive moving the cluster addresses to another node', async () => {
  await holdClusterAddresses(1, 'add');
  for (const addr of [CLUSTER.server.v4, CLUSTER.server.v6]) assert.equal((await ping(lab, 'cli', addr)).received, 3, `ping ${addr}`);
  await startStreamServer(lab, 'srv', STREAM_PORT);
  const fleet = await StreamFleet.start(lab, 'cli', CLUSTER.server.v4, STREAM_PORT, 200);
  assert.equal(fleet.failedToConnect, 0);
  await fleet.waitAllProgress(20_000);
  const ports = new Set((await fleet.report()).map((c) => c.localPort));
  assert.equal(ports.size, 200, 'distinct source ports');

  await fleet.resetGaps();
  await lab.linksDown('n1');
  await holdClusterAddresses(2, 'add');
  const moved = await fleet.waitAllProgress(30_000);
  const summary = fleetSummary(moved);
  process.stdout.write(`# plain forwarding, addresses moved n1 -> n2: ${JSON.stringify(summary)}\n`);
  assert.equal(summary.alive, 200);

  // Back to n1, which kept its addresses while its links were down.
  await holdClusterAddresses(2, 'del');
  await lab.linksUp('n1');
  await fleet.waitAllProgress(30_000);
  const final = await fleet.stop();
  assert.equal(fleetSummary(final).failed, 0);
  const movedAt = new Map(moved.map((c) => [c.localPort, c.verified]));
  assert.ok(final.every((c) => c.verified > (movedAt.get(c.localPort) ?? Infinity)), 'every stream moved data after coming back');
});
