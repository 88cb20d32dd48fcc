// The real `syncwall` CLI as a subprocess against the real management server
// (on a temporary Unix socket) backed by an in-memory daemon: output, JSON
// and exit codes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startManagementServer, type ManagementServer } from '../../control/src/api/server.js';
import { createLogger } from '../../control/src/log.js';
import { RulesError } from '../../control/src/rules/problem.js';
import { MemoryBackend, sampleConnections, sampleStatus } from './api-memory-backend.js';

const CLI = ['--import', 'tsx', 'control/src/cli/main.ts'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI asynchronously: the server under test lives in this process's event loop. */
function syncwall(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

// Each run is a fresh node + tsx process (about a second, more on a busy
// machine): the tests that only read run two at a time; the ones that change
// the backend run one at a time.
let dir: string;
let socketPath: string;
let backend: MemoryBackend;
let server: ManagementServer;
const cli = (...args: string[]): Promise<Run> => syncwall('--socket', socketPath, ...args);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'syncwall-cli-'));
  socketPath = join(dir, 'syncwalld.sock');
  backend = new MemoryBackend();
  server = await startManagementServer(backend, socketPath, createLogger('silent'));
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('syncwall CLI reading from a running management service', { concurrency: 2 }, () => {
  test('status prints aligned key/values and the interface table', async () => {
    const r = await cli('status');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^version {6}0\.1\.0$/m);
    assert.match(r.stdout, /^connections {2}5 of 262144 \(counted 700ms ago\)$/m);
    assert.match(r.stdout, /^INTERFACE {2}ZONE {5}IFINDEX {2}XDP$/m);
    assert.match(r.stdout, /^veth-out {3}outside {8}5 {2}native$/m);
  });

  test('status --json is the daemon status', async () => {
    const r = await cli('status', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), sampleStatus);
  });

  test('conns list --json lists everything; exact counters are numbers, larger ones strings', async () => {
    const r = await cli('conns', 'list', '--json');
    assert.equal(r.code, 0, r.stderr);
    const listed = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      listed.map((c) => c.src),
      sampleConnections.map((c) => c.src),
    );
    assert.equal(listed[0]?.bytesReply, 9000);
    assert.equal(listed[4]?.bytesOrig, String(2n ** 60n + 1n));
  });

  const filterCases: { args: string[]; sources: string[] }[] = [
    { args: ['--proto', 'udp'], sources: ['10.0.0.3'] },
    { args: ['--proto', '1'], sources: ['10.0.0.9'] },
    { args: ['--port', '443'], sources: ['10.0.0.2'] },
    { args: ['--state', 'syn_sent'], sources: ['10.0.0.2'] },
    { args: ['--family', '6'], sources: ['2001:db8::1'] },
    { args: ['--addr', '10.0.1.0/24', '--proto', 'tcp'], sources: ['10.0.0.1', '10.0.0.2'] },
    { args: ['--addr', '2001:db8::/32'], sources: ['2001:db8::1'] },
  ];
  for (const { args, sources } of filterCases) {
    test(`conns list ${args.join(' ')} selects ${sources.join(', ')}`, async () => {
      const r = await cli('conns', 'list', '--json', ...args);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        (JSON.parse(r.stdout) as { src: string }[]).map((c) => c.src),
        sources,
      );
    });
  }

  test('conns list prints an aligned table with one row per connection', async () => {
    const r = await cli('conns', 'list');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1 + sampleConnections.length);
    const header = lines[0] ?? '';
    assert.match(header, /^PROTO +SOURCE +DESTINATION +STATE +AGE +IDLE +PACKETS +BYTES +RULE +FLAGS$/);
    const stateColumn = header.indexOf('STATE');
    assert.ok(lines.slice(1).every((l) => /^\S/.test(l.slice(stateColumn))));
    assert.match(r.stdout, /^tcp +\[2001:db8::1\]:50000 +\[2001:db8:1::2\]:22 +established +5s +100ms +10\/8 +1000\/9000 +3$/m);
    assert.match(r.stdout, /^tcp +10\.0\.0\.2:40001 +10\.0\.1\.1:443 +syn_sent .* seen_reply$/m);
  });

  test('a filter value the daemon rejects exits 1 naming the field', async () => {
    const r = await cli('conns', 'list', '--addr', '10.0.0.0/99');
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^syncwall: conns list failed: addr: .*prefix length must be 0\.\.32\n$/);
  });

  test('a protocol or port the CLI cannot parse exits 1 before looking for the daemon', async () => {
    const proto = await syncwall('conns', 'list', '--proto', 'sctpx', '--config', join(dir, 'absent.yaml'));
    assert.equal(proto.code, 1);
    assert.equal(proto.stderr, 'syncwall: --proto: "sctpx" is not tcp, udp, icmp, icmpv6 or 0..255\n');
    const port = await syncwall('conns', 'flush', '--port', 'http', '--config', join(dir, 'absent.yaml'));
    assert.equal(port.code, 1);
    assert.equal(port.stderr, 'syncwall: --port: "http" is not a port number\n');
  });

  test('without --socket the socket comes from management.socket of --config', async () => {
    const config = join(dir, 'syncwall.yaml');
    writeFileSync(config, `interfaces:\n  - name: veth-in\n    zone: inside\nmanagement:\n  socket: ${socketPath}\n`);
    const r = await syncwall('--config', config, 'status', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { version: string }).version, sampleStatus.version);
  });

  test('an unreadable config without --socket exits 1 saying how to fix it', async () => {
    const missing = join(dir, 'absent.yaml');
    const r = await syncwall('--config', missing, 'stats');
    assert.equal(r.code, 1);
    const [first, reason] = r.stderr.split('\n');
    assert.equal(first, `syncwall: cannot get the management socket from ${missing} (or give --socket PATH):`);
    assert.match(reason ?? '', new RegExp(`^${missing}: cannot read config file: .*ENOENT`));
  });

  test('stats prints every counter; --json keeps 2^63 exact as a string', async () => {
    const table = await cli('stats');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^SCOPE +COUNTER +VALUE$/m);
    assert.match(table.stdout, /^datapath +punt +9223372036854775808$/m);
    assert.match(table.stdout, /^controller +punts_accepted +40$/m);
    const json = await cli('stats', '--json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      datapath: { pass_established: 123456, drop_out_of_window: 3, punt: '9223372036854775808' },
      controller: { punts_accepted: 40, reinject_errors: 0 },
      cluster: {},
    });
  });
});

describe('syncwall CLI changing daemon state', () => {
  test('conns flush deletes what matches and reports the count; no filter flushes all', async () => {
    try {
      const some = await cli('conns', 'flush', '--proto', 'tcp');
      assert.equal(some.code, 0, some.stderr);
      assert.equal(some.stdout, 'deleted 3 connections\n');
      assert.deepEqual(
        backend.connections.map((c) => c.src),
        ['10.0.0.3', '10.0.0.9'],
      );
      const rest = await cli('conns', 'flush', '--json');
      assert.equal(rest.code, 0, rest.stderr);
      assert.deepEqual(JSON.parse(rest.stdout), { deleted: 2 });
      assert.deepEqual(backend.connections, []);
    } finally {
      backend.connections = [...sampleConnections];
    }
  });

  test('rules reload reports the rule count, and with --recheck the removed connections', async () => {
    const plain = await cli('rules', 'reload');
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, 'reloaded 12 rules\n');
    const recheck = await cli('rules', 'reload', '--recheck', '--json');
    assert.equal(recheck.code, 0, recheck.stderr);
    assert.deepEqual(JSON.parse(recheck.stdout), { ruleCount: 12, removed: 2 });
    assert.deepEqual(backend.reloads.slice(-2), [false, true]);
  });

  test('rules reload refused for an invalid rules file exits 1 with one problem per line', async () => {
    backend.reloadFailure = new RulesError([
      { file: '/etc/syncwall/rules.conf', line: 3, field: 'dport', message: 'bad port "http"' },
      { file: '/etc/syncwall/rules.conf', line: 9, field: 'action', message: '"acept" is not an action' },
    ]);
    try {
      const r = await cli('rules', 'reload');
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        'syncwall: rules reload failed:\n/etc/syncwall/rules.conf:3: dport: bad port "http"\n/etc/syncwall/rules.conf:9: action: "acept" is not an action\n',
      );
    } finally {
      backend.reloadFailure = undefined;
    }
  });

  test('a daemon failure while reloading exits 3', async () => {
    backend.reloadFailure = new Error('map update failed: ENOMEM');
    try {
      const r = await cli('rules', 'reload');
      assert.equal(r.code, 3);
      assert.equal(r.stderr, 'syncwall: rules reload failed: map update failed: ENOMEM\n');
    } finally {
      backend.reloadFailure = undefined;
    }
  });

});

describe('syncwall CLI without a daemon', { concurrency: 2 }, () => {
  test('an unreachable daemon exits 2 naming the socket and errno', async () => {
    const socketPath = join(dir, 'absent.sock');
    const r = await syncwall('--socket', socketPath, 'status');
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `syncwall: cannot reach syncwalld at ${socketPath}: ENOENT\n`);
  });

  test('rules check accepts a good file and prints the rule count', async () => {
    const file = join(dir, 'good.rules');
    writeFileSync(file, '# web and dns\naccept proto tcp dport 80,443\naccept proto udp dport 53 comment "dns"\ndrop\n');
    const r = await syncwall('rules', 'check', file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `OK ${file}: 3 rules\n`);
  });

  test('rules check rejects a bad file with file:line: field for every problem', async () => {
    const file = join(dir, 'bad.rules');
    writeFileSync(file, 'accept proto tcp dport 80\naccept proto tcp dport http\nacept proto udp\n');
    const r = await syncwall('rules', 'check', file);
    assert.equal(r.code, 1);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines[0], `syncwall: ${file}: 2 problems`);
    assert.match(lines[1] ?? '', new RegExp(`^${file}:2: dport: `));
    assert.match(lines[2] ?? '', new RegExp(`^${file}:3: action: `));
  });

  test('rules check on a missing file exits 1', async () => {
    const r = await syncwall('rules', 'check', join(dir, 'missing.rules'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read rules file/);
  });

  test('a command without its subcommand is a usage error (exit 1)', async () => {
    const r = await syncwall('conns');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /give a subcommand: list or flush/);
  });

  test('version prints the package version', async () => {
    const r = await syncwall('version');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^syncwall \d+\.\d+\.\d+\n$/);
  });
});
