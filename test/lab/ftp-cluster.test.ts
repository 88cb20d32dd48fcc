// FTP through a 3-node load-sharing cluster (the patent's method 800): the
// client's source ports and data ports are chosen so that the data
// connection's bucket is owned by another node than the control
// connection's. The control connection's owner holds each command until
// both peers acked the expectation, so the data connection's first packet
// finds it on its own owner: transfers succeed (SHA-256 compared) in active
// and passive mode over IPv4 and IPv6, and the counters say the commands
// were held and released on ack. With common sync off nothing is held (a
// transfer whose data connection stays on its control connection's node
// still works). Then the data connection's owner loses its
// sync link: the hold times out, the command is released anyway, and the
// counters say so. The hold times observed are printed (p50/p99).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FLOW_KEY_SIZE, flowKey } from '../../control/src/bpf/codec.js';
import { bucketOf } from '../../control/src/cluster/bucket.js';
import { computeOwnership } from '../../control/src/cluster/ownership.js';
import { addressBytes } from '../../control/src/net/address.js';
import { FIRST_EPHEMERAL_PORT } from './buckets.js';
import { ClusterLab } from './cluster.js';
import { download, FtpServer, randomFile, sha256, upload, type FtpMode } from './ftp.js';
import { CLUSTER } from './topology.js';

const NODES = [1, 2, 3];
const PASSIVE_PORT = 30000;
const FTP_PORT = 21;
/** vsftpd's active data connections come from port 20 (connect_from_port_20). */
const ACTIVE_SOURCE_PORT = 20;
const FILE_SIZE = 200_000;
/** Long enough that a node whose sync link is cut stays a live peer through the timeout test. */
const FAILURE_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 90_000;
const RULES = `accept proto tcp from ${CLUSTER.clientNet.v4},${CLUSTER.clientNet.v6} to any dport ${FTP_PORT} zone outside helper ftp comment "ftp control"
`;
const ownership = computeOwnership(NODES, 'load-sharing', 1);

type Counters = Record<string, Record<string, number>>;

/** The owner of a TCP flow's bucket, normalized as the data plane does (IPv4 or IPv6). */
function ownerOf(src: string, sport: number, dst: string, dport: number): number {
  const s = addressBytes(src);
  const d = addressBytes(dst);
  const c = s.findIndex((v, i) => v !== d[i]);
  const srcIsA = c < 0 ? sport <= dport : s[c]! < d[c]!;
  const buf = new Uint8Array(FLOW_KEY_SIZE);
  const family = s.length === 4 ? 4 : 6;
  flowKey.write(buf, 0, srcIsA ? { family, proto: 6, addrA: s, addrB: d, portA: sport, portB: dport } : { family, proto: 6, addrA: d, addrB: s, portA: dport, portB: sport });
  return ownership.owner[bucketOf(buf, 0)]!;
}

interface Transfer {
  /** client source ports: control, then (passive) data */
  localPorts: [number, number];
  activePort?: number;
  controlOwner: number;
  dataOwner: number;
}

let searchFrom = 12000;

/**
 * Ports for one transfer whose control and data connections' owners satisfy
 * `want` (by default: different nodes, the patent's case). Passive: curl
 * binds the control connection to the first port of its range and the data
 * connection to the next.
 */
function pickTransfer(family: 4 | 6, mode: FtpMode, want = (control: number, data: number) => control !== data): Transfer {
  const [client, server] = family === 4 ? [CLUSTER.client.v4, CLUSTER.server.v4] : [CLUSTER.client.v6, CLUSTER.server.v6];
  const passive = mode === 'pasv' || mode === 'epsv';
  for (let port = searchFrom; port + 1 < FIRST_EPHEMERAL_PORT; port += 2) {
    const controlOwner = ownerOf(client, port, server, FTP_PORT);
    const activePort = port + 1;
    const owner = passive ? ownerOf(client, port + 1, server, PASSIVE_PORT) : ownerOf(server, ACTIVE_SOURCE_PORT, client, activePort);
    if (!want(controlOwner, owner)) continue;
    searchFrom = port + 2;
    return { localPorts: [port, port + 1], ...(passive ? {} : { activePort }), controlOwner, dataOwner: owner };
  }
  throw new Error('no ports fit');
}

let cl: ClusterLab;
let ftp: FtpServer;

before(async () => {
  cl = await ClusterLab.create({ nodes: NODES.length, rules: RULES });
  try {
    await cl.start(NODES, { failureTimeoutMs: FAILURE_TIMEOUT_MS });
    ftp = await FtpServer.start(cl.lab, 'srv', PASSIVE_PORT);
  } catch (err) {
    process.stderr.write(`\n${cl.diagnostics()}\n`);
    throw err;
  }
});

after(async () => {
  await cl?.teardown();
});

function clusterTest(name: string, fn: () => Promise<void>): void {
  test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`\n${cl.diagnostics()}\n`);
      throw err;
    }
  });
}

const counters = (id: number): Promise<Counters> => cl.json<Counters>(id, ['stats']);
const allCounters = async (): Promise<Map<number, Counters>> => new Map(await Promise.all(NODES.map(async (id) => [id, await counters(id)] as const)));
const ctl = (c: Map<number, Counters>, id: number, name: string): number => c.get(id)?.controller?.[name] ?? 0;

interface Conn {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  flags: string[];
}

/** The node whose own (not replica) related entry holds the data connection to `dport`. */
async function relatedHolder(dport: number): Promise<number[]> {
  const holders: number[] = [];
  for (const id of NODES) {
    const list = await cl.json<Conn[]>(id, ['conns', 'list', '--port', String(dport)]);
    if (list.some((c) => c.flags.includes('related') && !c.flags.includes('remote') && (c.dport === dport || c.sport === dport))) holders.push(id);
  }
  return holders;
}

const CASES: [4 | 6, FtpMode][] = [
  [4, 'port'],
  [4, 'epsv'],
  [6, 'eprt'],
  [6, 'epsv'],
];

for (const [family, mode] of CASES) {
  clusterTest(`IPv${family} ${mode}: the data connection's owner is another node; commands held until acked, files intact`, async () => {
    const [client, server] = family === 4 ? [CLUSTER.client.v4, CLUSTER.server.v4] : [CLUSTER.client.v6, CLUSTER.server.v6];
    const name = `c${family}-${mode}.bin`;
    const original = randomFile(cl.lab, name, FILE_SIZE);
    const before = await allCounters();

    const up = pickTransfer(family, mode);
    const r1 = await upload(cl.lab, 'cli', client, server, original.path, name, { mode, ...up });
    assert.equal(r1.code, 0, `upload: ${r1.stderr}`);
    assert.equal(sha256(readFileSync(join(ftp.pubDir, name))), original.sha, 'the uploaded copy differs');
    const down = pickTransfer(family, mode);
    const back = join(cl.lab.tmpDir, `${name}.back`);
    const r2 = await download(cl.lab, 'cli', client, server, name, back, { mode, ...down });
    assert.equal(r2.code, 0, `download: ${r2.stderr}`);
    assert.equal(sha256(readFileSync(back)), original.sha, 'the downloaded copy differs');

    const after = await allCounters();
    const delta = (id: number, n: string): number => ctl(after, id, n) - ctl(before, id, n);
    for (const t of [up, down]) {
      const dataPort = t.activePort ?? PASSIVE_PORT;
      assert.deepEqual(await relatedHolder(t.activePort ?? t.localPorts[1]), [t.dataOwner], `the data connection (port ${dataPort}) lives on its owner`);
    }
    const owners = [up.controlOwner, down.controlOwner];
    const held = (n: string): number => NODES.reduce((sum, id) => sum + delta(id, n), 0);
    assert.equal(held('helper_held'), 2, 'both commands were held');
    assert.equal(held('helper_released_on_ack'), 2, 'both were released on the peers\' acks');
    assert.equal(held('helper_released_on_timeout'), 0);
    assert.equal(held('expectations_used'), 2);
    for (const id of owners) assert.ok(delta(id, 'helper_held') >= 1, `node ${id} (a control owner) held`);
    process.stdout.write(
      `IPv${family} ${mode}: control on nodes ${owners.join(',')}, data on nodes ${up.dataOwner},${down.dataOwner}\n`,
    );
  });
}

clusterTest('common sync off: nothing to wait for, so nothing is held (and that is counted)', async () => {
  const setMode = (mode: string) => Promise.all(NODES.map(async (id) => assert.equal((await cl.cli(id, ['sync', 'mode', 'common', mode])).code, 0)));
  await setMode('off');
  try {
    // Without replication only a data connection on the control connection's own node can work.
    const t = pickTransfer(4, 'epsv', (control, data) => control === data);
    const before = await counters(t.controlOwner);
    const name = 'sync-off.bin';
    const original = randomFile(cl.lab, name, 10_000);
    const r = await upload(cl.lab, 'cli', CLUSTER.client.v4, CLUSTER.server.v4, original.path, name, { mode: 'epsv', ...t });
    assert.equal(r.code, 0, `upload: ${r.stderr}`);
    assert.equal(sha256(readFileSync(join(ftp.pubDir, name))), original.sha);
    const after = await counters(t.controlOwner);
    const delta = (n: string): number => (after.controller?.[n] ?? 0) - (before.controller?.[n] ?? 0);
    assert.equal(delta('helper_hold_skipped_sync_off'), 1);
    assert.equal(delta('helper_held'), 0);
    assert.equal(delta('expectations_used'), 1);
  } finally {
    await setMode('combined');
  }
});

clusterTest("the data connection's owner cut from the sync network: the hold times out and the command is released", async () => {
  const t = pickTransfer(4, 'port');
  const before = await counters(t.controlOwner);
  await cl.unplug(t.dataOwner, 'sync');
  try {
    // The expectation never reaches the data connection's owner, so the data connection fails: the outcome the hold tries to prevent.
    const name = 'timeout.bin';
    const original = randomFile(cl.lab, name, 1000);
    const r = await upload(cl.lab, 'cli', CLUSTER.client.v4, CLUSTER.server.v4, original.path, name, { mode: 'port', ...t, maxTimeS: 3 });
    process.stdout.write(`with node ${t.dataOwner} cut off: curl exit ${r.code}\n`);
  } finally {
    await cl.plug(t.dataOwner, 'sync');
  }
  const after = await counters(t.controlOwner);
  const delta = (n: string): number => (after.controller?.[n] ?? 0) - (before.controller?.[n] ?? 0);
  assert.equal(delta('helper_held'), 1);
  assert.equal(delta('helper_released_on_timeout'), 1);
  assert.equal(delta('helper_released_on_ack'), 0);
});

clusterTest('hold times', async () => {
  const c = await allCounters();
  for (const id of NODES) {
    const n = (name: string): number => ctl(c, id, name);
    process.stdout.write(
      `node ${id}: ${n('helper_hold_samples')} holds, p50 ${n('helper_hold_p50_us')} µs, p99 ${n('helper_hold_p99_us')} µs, max ${n('helper_hold_max_us')} µs ` +
        `(on ack ${n('helper_released_on_ack')}, on timeout ${n('helper_released_on_timeout')})\n`,
    );
  }
  assert.ok(NODES.some((id) => ctl(c, id, 'helper_hold_samples') > 0));
});
