// FTP through one syncwall node with the real vsftpd and curl: a rule lets
// the client open control connections with `helper ftp`, no rule allows any
// data connection, so every transfer below works only through the helper's
// expectations. Uploads and downloads in passive (PASV 227, EPSV 229) and
// active (PORT, EPRT) mode over IPv4, and EPSV/EPRT over IPv6, compared by
// SHA-256. A single node has no peer to wait for: commands are not held
// (counted as such).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { download, FtpServer, randomFile, sha256, upload, type FtpMode } from './ftp.js';
import { createLab, type Lab } from './netns.js';
import { SINGLE, singleFirewall } from './topology.js';

const PASSIVE_PORT = 30000;
const FILE_SIZE = 300_000;
const TEST_TIMEOUT_MS = 60_000;
const RULES = `accept proto tcp from ${SINGLE.clientNet.v4},${SINGLE.clientNet.v6} to any dport 21 zone outside helper ftp comment "ftp control"
`;

interface Stats {
  datapath: Record<string, number>;
  controller: Record<string, number>;
}

let lab: Lab;
let ftp: FtpServer;
let nextActivePort = 41000;

before(async () => {
  lab = await createLab({ topology: singleFirewall() });
  try {
    await lab.startDaemon({ rules: RULES });
    ftp = await FtpServer.start(lab, 'srv', PASSIVE_PORT);
  } catch (err) {
    process.stderr.write(`\n${lab.diagnostics()}\n`);
    throw err;
  }
});

after(async () => {
  await lab?.teardown();
});

async function stats(): Promise<Stats> {
  const r = await lab.cli(['stats', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json<Stats>();
}

/** Uploads a random file and downloads it again in `mode`; both copies must match the original. */
async function roundTrip(family: 4 | 6, mode: FtpMode): Promise<void> {
  const [client, server] = family === 4 ? [SINGLE.client.v4, SINGLE.server.v4] : [SINGLE.client.v6, SINGLE.server.v6];
  const name = `f${family}-${mode}.bin`;
  const original = randomFile(lab, name, FILE_SIZE);
  const active = (): { activePort?: number } => (mode === 'port' || mode === 'eprt' ? { activePort: nextActivePort++ } : {});
  const up = await upload(lab, 'cli', client, server, original.path, name, { mode, ...active() });
  assert.equal(up.code, 0, `upload ${name}: ${up.stderr}`);
  assert.equal(sha256(readFileSync(join(ftp.pubDir, name))), original.sha, 'the uploaded copy differs');
  const back = join(lab.tmpDir, `${name}.back`);
  const down = await download(lab, 'cli', client, server, name, back, { mode, ...active() });
  assert.equal(down.code, 0, `download ${name}: ${down.stderr}`);
  assert.equal(sha256(readFileSync(back)), original.sha, 'the downloaded copy differs');
}

const CASES: [4 | 6, FtpMode][] = [
  [4, 'pasv'],
  [4, 'epsv'],
  [4, 'port'],
  [4, 'eprt'],
  [6, 'epsv'],
  [6, 'eprt'],
];

for (const [family, mode] of CASES) {
  test(`IPv${family} ${mode}: upload and download intact, data connections admitted as related`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const before = await stats();
    try {
      await roundTrip(family, mode);
    } catch (err) {
      process.stderr.write(`\n${lab.diagnostics()}\n`);
      throw err;
    }
    const after = await stats();
    const delta = (name: string): number => (after.controller[name] ?? 0) - (before.controller[name] ?? 0);
    assert.equal(delta('expectations_created'), 2, 'one expectation per transfer');
    assert.equal(delta('expectations_used'), 2, 'each data connection came through its expectation');
    assert.equal(delta('helper_hold_skipped_single_node'), 2);
    assert.equal(delta('helper_held'), 0);
    assert.equal(delta(mode === 'pasv' || mode === 'epsv' ? 'ftp_expect_passive' : 'ftp_expect_active'), 2);
  });
}

test('only helper packets left the fast path, and each went back through the release program', { timeout: TEST_TIMEOUT_MS }, async () => {
  const s = await stats();
  const c = s.controller;
  assert.equal(s.datapath.punt_helper, c.helper_punts);
  assert.equal(c.helper_released, c.helper_punts);
  assert.equal(c.helper_release_errors, 0);
  // 2 commands per test; anything else punted arrived while a command was being released
  assert.ok(c.helper_punts! >= 2 * CASES.length, `helper punts ${c.helper_punts}`);
  assert.equal(c.expectations_now, 0, 'every expectation was used');
  process.stdout.write(`single node: ${c.helper_punts} helper punts for ${2 * CASES.length} commands; ${s.datapath.hit} packets hit entries\n`);
});
