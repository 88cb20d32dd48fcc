// `syncwalld check-config` as a subprocess on real files: a clean config, a
// config with problems, rules with problems, and rules that name interfaces
// or zones the config does not have. Every problem names file, line and field.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function syncwalld(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'control/src/daemon/main.ts', ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

const CONFIG = `interfaces:
  - name: veth-in
    zone: inside
  - name: veth-out
    zone: outside
rules: rules.conf
management:
  socket: /run/syncwall-test/syncwalld.sock
`;

const RULES = `accept proto tcp zone inside dport 80,443
accept proto icmp icmp-type echo-request
`;

describe('syncwalld check-config', { concurrency: 2 }, () => {
  let root: string;
  let n = 0;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'syncwalld-check-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  /** A directory with syncwall.yaml and rules.conf; returns the config path. */
  function files(config: string, rules: string): string {
    const dir = join(root, String(n++));
    const configPath = join(dir, 'syncwall.yaml');
    mkdirSync(dir);
    writeFileSync(configPath, config);
    writeFileSync(join(dir, 'rules.conf'), rules);
    return configPath;
  }

  test('a clean config and rules file: exit 0 with a one-line summary', async () => {
    const config = files(CONFIG, RULES);
    const r = await syncwalld('check-config', '--config', config);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `OK ${config}: interfaces veth-in, veth-out; 2 rules from ${join(config, '..', 'rules.conf')}\n`);
  });

  test('config problems are all printed with file:line: field and exit 1', async () => {
    const config = files(CONFIG.replace('zone: outside', 'zone: outside\n    mtu: 9000') + 'tables:\n  connections: 12\n', RULES);
    const r = await syncwalld('check-config', '--config', config);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0] ?? '', new RegExp(`^${config}:6: interfaces\\[1\\]\\.mtu: `));
    assert.match(lines[1] ?? '', new RegExp(`^${config}:11: tables\\.connections: `));
  });

  test('rules problems are printed with the rules file, line and keyword', async () => {
    const config = files(CONFIG, 'accept proto tcp dport 80\naccept proto tcp dport http\n');
    const r = await syncwalld('check-config', '--config', config);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^${join(config, '..', 'rules.conf')}:2: dport: .*\n$`));
  });

  test('rules naming an interface or zone the config lacks are problems too', async () => {
    const config = files(CONFIG, 'accept proto tcp zone dmz dport 80\naccept proto udp iif eth9\n');
    const r = await syncwalld('check-config', '--config', config);
    assert.equal(r.code, 1);
    const rules = join(config, '..', 'rules.conf');
    const lines = r.stderr.trimEnd().split('\n');
    assert.match(lines[0] ?? '', new RegExp(`^${rules}:1: zone: zone "dmz" is not in `));
    assert.match(lines[1] ?? '', new RegExp(`^${rules}:2: iif: interface "eth9" is not in `));
  });

  test('a missing config file is reported and exits 1; the daemon does not start either', async () => {
    const missing = join(root, 'absent.yaml');
    for (const args of [['check-config', '--config', missing], ['--config', missing]]) {
      const r = await syncwalld(...args);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^${missing}: cannot read config file: .*ENOENT`));
    }
  });
});
