// The cluster part of the management API and CLI: status with the cluster
// section, peers, sync mode switches, drain, and FAILED_PRECONDITION on a
// single node; through the real gRPC server, client and CLI subprocess.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ManagementCallError, ManagementClient } from '../../control/src/api/client.js';
import { startManagementServer, type ManagementServer } from '../../control/src/api/server.js';
import { createLogger } from '../../control/src/log.js';
import { MemoryBackend, sampleCluster, sampleDrain, samplePeers } from './api-memory-backend.js';

let dir: string;
let backend: MemoryBackend;
let server: ManagementServer;
let client: ManagementClient;
let socketPath: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'syncwall-cluster-api-'));
  socketPath = join(dir, 'syncwalld.sock');
  backend = new MemoryBackend();
  server = await startManagementServer(backend, socketPath, createLogger('silent'));
  client = new ManagementClient(socketPath);
});

after(async () => {
  client.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function syncwall(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'control/src/cli/main.ts', '--socket', socketPath, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

async function failsWith(promise: Promise<unknown>, code: status, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ManagementCallError);
    assert.equal(status[err.code], status[code]);
    assert.match(err.message, message);
    return true;
  });
}

test('a single node: no cluster in status, cluster calls fail as a precondition; the CLI exits 1', async () => {
  backend.cluster = undefined;
  assert.equal((await client.status()).cluster, undefined);
  await failsWith(client.peers(), status.FAILED_PRECONDITION, /not a cluster member/);
  await failsWith(client.setSyncMode('node', 'off'), status.FAILED_PRECONDITION, /not a cluster member/);
  await failsWith(client.drain(), status.FAILED_PRECONDITION, /not a cluster member/);
  const r = await syncwall('peers');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^syncwall: peers failed: this node is not a cluster member/);
});

test('status, peers and stats of a cluster member come back whole', async () => {
  backend.cluster = { ...sampleCluster };
  assert.deepEqual((await client.status()).cluster, sampleCluster);
  assert.deepEqual(await client.peers(), samplePeers);
  assert.deepEqual((await client.stats()).cluster, {});
});

test('sync mode switches are validated at the edge and reported with the previous mode', async () => {
  backend.cluster = { ...sampleCluster };
  assert.deepEqual(await client.setSyncMode('common', 'periodic'), { stateClass: 'common', mode: 'periodic', previous: 'combined' });
  assert.equal((await client.status()).cluster?.syncCommon, 'periodic');
  await failsWith(client.setSyncMode('node', 'sometimes' as never), status.INVALID_ARGUMENT, /^mode: must be on-demand, periodic, combined, off/);
  await failsWith(client.setSyncMode('all' as never, 'off'), status.INVALID_ARGUMENT, /^state_class: must be node or common/);
});

test('drain returns what was handed over; a second drain is refused', async () => {
  backend.cluster = { ...sampleCluster };
  assert.deepEqual(await client.drain(), sampleDrain);
  await failsWith(client.drain(), status.FAILED_PRECONDITION, /draining, not active/);
});

test('the CLI: status shows the cluster, peers a table and JSON, sync mode and node drain', async () => {
  backend.cluster = { ...sampleCluster };
  const st = await syncwall('status');
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /^cluster {6}lab1, node 1, active$/m);
  assert.match(st.stdout, /^sync {9}node-specific combined, common combined$/m);
  assert.match(st.stdout, /^buckets {6}341 owned, 342 backed up$/m);
  const peers = await syncwall('peers');
  assert.equal(peers.code, 0, peers.stderr);
  assert.match(peers.stdout, /^ID {2}ADDRESS {8}STATE {3}CONNECTED {2}INCARNATION {2}HEARTBEAT {2}LAG {2}UNACKED {2}BUCKETS$/m);
  assert.match(peers.stdout, /^ +2 {2}10\.9\.0\.2:7400 {2}active {2}yes {8}a1b2c3d4 {5}40ms ago +3ms +2 +340$/m);
  assert.match(peers.stdout, /^ +3 {2}10\.9\.0\.3:7400 {2}failed {2}no +- +- +- +0 +0$/m);
  const json = await syncwall('peers', '--json');
  assert.deepEqual(JSON.parse(json.stdout), samplePeers);
  const mode = await syncwall('sync', 'mode', 'node', 'on-demand');
  assert.equal(mode.stdout, 'sync mode of node-specific state: on-demand (was combined)\n');
  const bad = await syncwall('sync', 'mode', 'node', 'never');
  assert.equal(bad.code, 1);
  const drain = await syncwall('node', 'drain', '--json');
  assert.deepEqual(JSON.parse(drain.stdout), sampleDrain);
});
