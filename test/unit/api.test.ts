// The management API end to end: the real gRPC server on a temporary Unix
// socket, the real client, and an in-memory daemon behind them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { ConnFilter, ConnView } from '../../control/src/api/backend.js';
import { ManagementCallError, ManagementClient } from '../../control/src/api/client.js';
import { startManagementServer, type ManagementServer } from '../../control/src/api/server.js';
import { SocketPathError } from '../../control/src/api/socket-file.js';
import { createLogger } from '../../control/src/log.js';
import { RulesError } from '../../control/src/rules/problem.js';
import { conn, MemoryBackend, sampleConnections, sampleStats, sampleStatus } from './api-memory-backend.js';

const log = createLogger('silent');

async function collect(iterable: AsyncIterable<ConnView>): Promise<ConnView[]> {
  const out: ConnView[] = [];
  for await (const c of iterable) out.push(c);
  return out;
}

async function rejectsWithStatus(promise: Promise<unknown>, code: status, messagePart: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ManagementCallError, `expected ManagementCallError, got ${String(err)}`);
    assert.equal(status[err.code], status[code]);
    assert.match(err.message, messagePart);
    return true;
  });
}

describe('management API over a Unix socket', () => {
  let dir: string;
  let socketPath: string;
  let backend: MemoryBackend;
  let server: ManagementServer;
  let client: ManagementClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'syncwall-api-'));
    socketPath = join(dir, 'run', 'syncwalld.sock');
    backend = new MemoryBackend();
    server = await startManagementServer(backend, socketPath, log);
    client = new ManagementClient(socketPath);
  });

  after(async () => {
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('creates the socket directory 0750 and the socket 0660', () => {
    assert.equal(statSync(join(dir, 'run')).mode & 0o777, 0o750);
    const st = statSync(socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
  });

  test('status and stats come back with their values, counters as bigint', async () => {
    assert.deepEqual(await client.status(), { ...sampleStatus, connections: backend.connections.length });
    const stats = await client.stats();
    assert.deepEqual(stats, sampleStats);
    assert.equal(stats.datapath.punt, 2n ** 63n);
  });

  test('lists every connection unchanged, counters beyond 2^53 intact', async () => {
    assert.deepEqual(await collect(client.listConnections()), sampleConnections);
  });

  const filterCases: { filter: ConnFilter; sources: string[] }[] = [
    { filter: { family: 6 }, sources: ['2001:db8::1'] },
    { filter: { proto: 17 }, sources: ['10.0.0.3'] },
    { filter: { port: 443 }, sources: ['10.0.0.2'] },
    { filter: { state: 'syn_sent' }, sources: ['10.0.0.2'] },
    { filter: { addr: '192.168.0.0/16' }, sources: ['10.0.0.3'] },
    { filter: { addr: '10.0.0.1' }, sources: ['10.0.0.1'] },
    { filter: { addr: '2001:db8:1::/48', family: 6 }, sources: ['2001:db8::1'] },
    { filter: { proto: 6, port: 80 }, sources: ['10.0.0.1'] },
  ];
  for (const { filter, sources } of filterCases) {
    test(`filter ${JSON.stringify(filter)} reaches the backend and selects ${sources.join(', ')}`, async () => {
      const listed = await collect(client.listConnections(filter));
      assert.deepEqual(listed.map((c) => c.src), sources);
      assert.deepEqual(backend.seenFilters.at(-1), filter);
    });
  }

  test('state names are matched case-insensitively (normalized at the edge)', async () => {
    await collect(client.listConnections({ state: 'SYN_SENT' }));
    assert.deepEqual(backend.seenFilters.at(-1), { state: 'syn_sent' });
  });

  const badFilters: { filter: ConnFilter; field: string }[] = [
    { filter: { addr: 'not-an-address' }, field: 'addr' },
    { filter: { addr: '10.0.0.0/33' }, field: 'addr' },
    { filter: { addr: '2001:db8::/32', family: 4 }, field: 'addr' },
    { filter: { family: 5 as 4 }, field: 'family' },
    { filter: { port: 0 }, field: 'port' },
    { filter: { port: 70000 }, field: 'port' },
    { filter: { proto: 300 }, field: 'proto' },
    { filter: { state: 'no such state!' }, field: 'state' },
  ];
  for (const { filter, field } of badFilters) {
    test(`rejects ${JSON.stringify(filter)} as INVALID_ARGUMENT naming ${field}, backend untouched`, async () => {
      const seen = backend.seenFilters.length;
      await rejectsWithStatus(collect(client.listConnections(filter)), status.INVALID_ARGUMENT, new RegExp(`^${field}: `));
      await rejectsWithStatus(client.deleteConnections(filter), status.INVALID_ARGUMENT, new RegExp(`^${field}: `));
      assert.equal(backend.seenFilters.length, seen);
    });
  }

  test('delete removes the matching connections and returns the count; empty filter flushes', async () => {
    backend.connections = [...sampleConnections];
    assert.equal(await client.deleteConnections({ family: 4, proto: 6 }), 2);
    assert.equal((await collect(client.listConnections())).length, sampleConnections.length - 2);
    assert.equal(await client.deleteConnections({}), sampleConnections.length - 2);
    assert.deepEqual(await collect(client.listConnections()), []);
    backend.connections = [...sampleConnections];
  });

  test('reload passes recheck through and returns counts', async () => {
    assert.deepEqual(await client.reloadRules(false), { ruleCount: 12, removed: 0 });
    assert.deepEqual(await client.reloadRules(true), { ruleCount: 12, removed: 2 });
    assert.deepEqual(backend.reloads.slice(-2), [false, true]);
  });

  test('a rules file with problems is FAILED_PRECONDITION with every problem, one per line', async () => {
    backend.reloadFailure = new RulesError([
      { file: '/etc/syncwall/rules.conf', line: 3, field: 'dport', message: 'bad port "http"' },
      { file: '/etc/syncwall/rules.conf', line: 7, field: '', message: 'unknown keyword "acept"' },
    ]);
    try {
      await rejectsWithStatus(
        client.reloadRules(false),
        status.FAILED_PRECONDITION,
        /^\/etc\/syncwall\/rules\.conf:3: dport: bad port "http"\n\/etc\/syncwall\/rules\.conf:7: unknown keyword "acept"$/,
      );
    } finally {
      backend.reloadFailure = undefined;
    }
  });

  test('an unexpected backend failure is INTERNAL with its message', async () => {
    backend.reloadFailure = new Error('map update failed');
    try {
      await rejectsWithStatus(client.reloadRules(true), status.INTERNAL, /map update failed/);
    } finally {
      backend.reloadFailure = undefined;
    }
  });

  test('a second server on a live socket is refused', async () => {
    await assert.rejects(startManagementServer(new MemoryBackend(), socketPath, log), SocketPathError);
    assert.deepEqual(await client.status(), { ...sampleStatus, connections: backend.connections.length });
  });
});

describe('management socket lifecycle', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'syncwall-api-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('an unreachable daemon is UNAVAILABLE naming the socket and errno', async () => {
    const client = new ManagementClient(join(dir, 'absent.sock'));
    try {
      await rejectsWithStatus(client.status(), status.UNAVAILABLE, new RegExp(`cannot reach syncwalld at ${dir}/absent.sock: ENOENT`));
    } finally {
      client.close();
    }
  });

  test('a stale socket left by a killed daemon is replaced; close removes the socket', async () => {
    const socketPath = join(dir, 'stale.sock');
    const killed = spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(statSync(socketPath).isSocket());

    const server = await startManagementServer(new MemoryBackend(), socketPath, log);
    const client = new ManagementClient(socketPath);
    try {
      assert.equal((await client.status()).version, sampleStatus.version);
    } finally {
      client.close();
      await server.close();
    }
    assert.equal(existsSync(socketPath), false);
  });

  test('a path that is not a socket is left alone and refused', async () => {
    const socketPath = join(dir, 'regular-file');
    spawnSync('touch', [socketPath]);
    await assert.rejects(startManagementServer(new MemoryBackend(), socketPath, log), /exists and is not a socket/);
    assert.ok(statSync(socketPath).isFile());
  });

  test('a client that stops reading a listing early ends the backend iteration', async () => {
    const socketPath = join(dir, 'cancel.sock');
    const backend = new MemoryBackend();
    let finished = false;
    backend.listConnections = async function* () {
      try {
        for (let i = 0; i < 1_000_000; i++) yield conn({ sport: i % 65536 });
      } finally {
        finished = true;
      }
    };
    const server = await startManagementServer(backend, socketPath, log);
    const client = new ManagementClient(socketPath);
    try {
      let read = 0;
      for await (const _ of client.listConnections()) if (++read === 3) break;
      for (let i = 0; i < 500 && !finished; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(finished, true, 'backend iteration still running after the client left');
    } finally {
      client.close();
      await server.close();
    }
  });
});
