// A joining cluster node whose answering peer fails mid-transfer. The node
// runs for real (ClusterNode, its join, the data plane's maps); the peer is
// played through the transport seam, so the test decides exactly when its
// answer arrives and when it is declared failed. A false failure (the peer
// is back within the grace period) must not send the node active with half
// the state: it asks the peer again and waits for the whole answer. A peer
// that stays away lets the node go active with what arrived.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConnTable } from '../../control/src/bpf/conn-table.js';
import { ClusterNode } from '../../control/src/cluster/cluster-node.js';
import { FlowRecords } from '../../control/src/cluster/flow-records.js';
import type { TransportEvents } from '../../control/src/cluster/transport.js';
import type { SyncPayload } from '../../control/src/cluster/types.js';
import { parseConfig } from '../../control/src/config/load.js';
import { monotonicNs } from '../../control/src/engine/engine.js';
import { FlowEventFeed } from '../../control/src/engine/flow-events.js';
import { MapName } from '../../control/src/gen/layout.js';
import { createLogger } from '../../control/src/log.js';
import { scriptedTransport } from '../unit/scripted-transport.js';
import { TestDataplane } from './harness.js';

const FAILURE_TIMEOUT_MS = 200;
/** The node's grace for a failed answerer: max(2 s, 5 failure timeouts). */
const GRACE_MS = 2000;

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sw-cluster-join-'));
  for (const f of ['ca.pem', 'node-1.pem', 'node-1-key.pem']) writeFileSync(join(dir, f), 'PEM\n');
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Joiner {
  node: ClusterNode;
  events: TransportEvents;
  requests: Extract<SyncPayload, { kind: 'request' }>[];
  started: Promise<void>;
  active: () => boolean;
  close(): Promise<void>;
}

function startJoiner(): Joiner {
  const config = parseConfig(
    [
      'interfaces:',
      '  - { name: eth0, zone: outside }',
      'cluster:',
      '  id: jointest',
      '  node_id: 1',
      '  listen: 127.0.0.1:7400',
      '  peers:',
      '    - { id: 2, address: 127.0.0.1:7401 }',
      '  tls: { ca: ca.pem, cert: node-1.pem, key: node-1-key.pem }',
      '  mac: 03:53:57:00:00:0A',
      `  failure_timeout_ms: ${FAILURE_TIMEOUT_MS}`,
      '  heartbeat_ms: 50',
    ].join('\n'),
    join(dir, 'syncwall.yaml'),
  ).cluster!;
  const dp = TestDataplane.load({ connEntries: 1024 });
  const requests: Joiner['requests'] = [];
  const scripted = scriptedTransport((_to, payload) => {
    if (payload.kind === 'request') requests.push(payload);
  });
  const node = new ClusterNode({
    config,
    interfaces: [],
    maps: dp.clusterMapFds(),
    table: new ConnTable(dp.obj.mapFd(MapName.sw_conns), 256),
    injector: { reinject: () => {} },
    events: new FlowEventFeed(),
    log: createLogger(process.env.SW_TEST_LOG === '1' ? 'info' : 'silent'),
    monotonicNs,
    lastSeenGranularityNs: 1_000_000_000n,
    chunk: 64,
    transport: scripted.factory,
  });
  let active = false;
  // the peer announces itself before the node looks for peers
  const started = node.start().then(() => void (active = true));
  scripted.events().peerState(2, 'active', 'peer-incarnation-1');
  return {
    node,
    events: scripted.events(),
    requests,
    started,
    active: () => active,
    close: async () => {
      await node.stop();
      dp.close();
    },
  };
}

const bulk = (requestId: number, last: boolean): SyncPayload => ({ kind: 'bulk', requestId, entries: new FlowRecords(0), last });

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('a peer falsely failed mid-join is asked again once it is back; the node goes active only after its whole answer', async () => {
  const j = startJoiner();
  try {
    await until('the join request', () => j.requests.length === 1);
    const first = j.requests[0]!;
    assert.equal(first.common, true);
    assert.ok((first.buckets ?? []).length > 0, 'it asks for the buckets it will serve');
    j.events.message(2, bulk(first.requestId, false));
    j.events.peerState(2, 'failed', 'peer-incarnation-1');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(j.active(), false, 'not active while the answering peer may come back');
    j.events.peerState(2, 'active', 'peer-incarnation-1');
    await until('the request asked again', () => j.requests.length === 2);
    const second = j.requests[1]!;
    assert.notEqual(second.requestId, first.requestId);
    // the rest of the first answer is stale and does not finish the join
    j.events.message(2, bulk(first.requestId, true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(j.active(), false, 'the abandoned request does not complete the join');
    j.events.message(2, bulk(second.requestId, true));
    await j.started;
    assert.equal(j.node.status().state, 'active');
    assert.equal(j.node.stats.get('join_requests_sent'), 2);
    assert.equal(j.node.stats.get('join_incomplete'), 0);
    assert.equal(j.node.stats.get('join_timeouts'), 0);
  } finally {
    await j.close();
  }
});

test('a peer that fails mid-join and stays away: after the grace period the node goes active with what arrived', async () => {
  const j = startJoiner();
  try {
    await until('the join request', () => j.requests.length === 1);
    j.events.message(2, bulk(j.requests[0]!.requestId, false));
    const failedAt = performance.now();
    j.events.peerState(2, 'failed', 'peer-incarnation-1');
    await j.started;
    assert.ok(performance.now() - failedAt >= GRACE_MS - 50, 'it waited out the grace period');
    assert.equal(j.node.status().state, 'active');
    assert.equal(j.requests.length, 1, 'nobody to ask again');
    assert.equal(j.node.stats.get('join_incomplete'), 1);
    assert.deepEqual(j.node.status().members, [1], 'alone, it owns every bucket');
  } finally {
    await j.close();
  }
});
