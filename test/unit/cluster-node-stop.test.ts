// A stopped cluster node ignores what its transport still delivers: the
// daemon closes the data plane's maps right after stop(), and a peer's late
// hello used to recompute ownership and write the owner array into a closed
// map (EBADF at SIGTERM). Map fds of -1 stand for the closed maps: any write
// to them fails.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ConnTable } from '../../control/src/bpf/conn-table.js';
import { ClusterNode } from '../../control/src/cluster/cluster-node.js';
import type { TransportEvents } from '../../control/src/cluster/transport.js';
import { parseConfig } from '../../control/src/config/load.js';
import { FlowEventFeed } from '../../control/src/engine/flow-events.js';
import { createLogger } from '../../control/src/log.js';
import { MemoryTable } from './cluster-memory-table.js';
import { scriptedTransport } from './scripted-transport.js';

const dir = mkdtempSync(join(tmpdir(), 'sw-cluster-node-stop-'));
for (const f of ['ca.pem', 'node-1.pem', 'node-1-key.pem']) writeFileSync(join(dir, f), 'PEM\n');
const CONFIG = [
  'interfaces:',
  '  - { name: eth0, zone: outside }',
  'cluster:',
  '  id: lab1',
  '  node_id: 1',
  '  listen: 10.9.0.1:7400',
  '  peers:',
  '    - { id: 2, address: 10.9.0.2:7400 }',
  '  tls: { ca: ca.pem, cert: node-1.pem, key: node-1-key.pem }',
  '  mac: 03:53:57:00:00:0A',
  '  addresses:',
  '    - { interface: eth0, address: 10.1.0.1 }',
].join('\n');

function nodeWithClosedMaps(): { node: ClusterNode; events: () => TransportEvents } {
  const config = parseConfig(CONFIG, join(dir, 'syncwall.yaml')).cluster!;
  const scripted = scriptedTransport();
  const node = new ClusterNode({
    config,
    interfaces: [],
    maps: { bucketOwnerFd: -1, clusterAddrsFd: -1, ifacesFd: -1, leaseFd: -1 },
    table: new MemoryTable() as unknown as ConnTable,
    injector: { reinject: () => {} },
    events: new FlowEventFeed(),
    log: createLogger('silent'),
    monotonicNs: () => process.hrtime.bigint(),
    lastSeenGranularityNs: 1_000_000n,
    chunk: 64,
    transport: scripted.factory,
  });
  return { node, events: scripted.events };
}

test('before stop, a peer becoming active changes ownership (and here hits the closed owner map)', () => {
  const { events } = nodeWithClosedMaps();
  assert.throws(() => events().peerState(2, 'active', 'a1'), /EBADF|bad file/i);
});

test('after stop, a late hello or message from a peer touches nothing', async () => {
  const { node, events } = nodeWithClosedMaps();
  await node.stop();
  events().peerState(2, 'active', 'a1');
  events().message(2, { kind: 'handover', buckets: [1, 2, 3] });
  assert.equal(node.stats.get('handovers_received'), 0);
  assert.equal(node.stats.get('ownership_changes'), 0);
});
