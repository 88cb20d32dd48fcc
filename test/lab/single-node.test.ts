// client — firewall — server with the real syncwalld, the real CLI and real
// clients (curl, ping, UDP and TCP agents). One lab and one daemon serve the
// tests in order; a failing test prints the daemon's log.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Daemon } from './daemon.js';
import { createLab, type Lab } from './netns.js';
import { waitFor } from './poll.js';
import type { LabProcess } from './processes.js';
import { SINGLE, singleFirewall } from './topology.js';
import {
  curl,
  CURL_CONNECTION_REFUSED,
  CURL_OK,
  CURL_TIMEOUT,
  httpRequests,
  ping,
  rawReceived,
  sendRaw,
  startHttpServer,
  startRawReceiver,
  startStreamServer,
  startUdpEcho,
  tcpCounters,
  udpRequest,
  VerifiedStream,
} from './traffic.js';

// Rule ids are positions in the file (comments do not count).
const RULE = { web: 1, reject81: 2, udp: 3, ping4: 4, ping6: 5, drop82: 6, streams: 7, proto253: 8 } as const;
const RULES = `# syncwall lab rules
accept proto tcp from ${SINGLE.clientNet.v4},${SINGLE.clientNet.v6} to any dport 80,8080 zone outside comment "web"
reject proto tcp dport 81
accept proto udp dport 5353
accept proto icmp icmp-type echo-request
accept proto icmpv6 icmp-type echo-request
drop proto tcp dport 82
accept proto tcp dport 9000 zone outside comment "streams"
accept proto 253 zone outside comment "an untracked protocol, allowed"
`;
// The reload tests' rules: the web rule loses 8080, the stream rule is gone.
const RULES_NARROWED = `accept proto tcp from ${SINGLE.clientNet.v4},${SINGLE.clientNet.v6} to any dport 80 zone outside comment "web"
reject proto tcp dport 81
accept proto udp dport 5353
accept proto icmp icmp-type echo-request
accept proto icmpv6 icmp-type echo-request
drop proto tcp dport 82
`;

const STREAM_PORT = 9000;
const TEST_TIMEOUT_MS = 120_000;

interface Conn {
  family: number;
  proto: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  state: string;
  ruleId: number;
  packetsOrig: number;
  packetsReply: number;
  bytesOrig: number;
  bytesReply: number;
}

interface Stats {
  datapath: Record<string, number>;
  controller: Record<string, number>;
}

let lab: Lab;
let daemon: Daemon;
let http: LabProcess;

before(async () => {
  lab = await createLab({ topology: singleFirewall() });
  try {
    daemon = await lab.startDaemon({ rules: RULES });
    http = await startHttpServer(lab, 'srv', [80, 81, 82, 8080]);
    await startUdpEcho(lab, 'srv', 5353);
    await startStreamServer(lab, 'srv', STREAM_PORT);
  } catch (err) {
    process.stderr.write(`\n${lab.diagnostics()}\n`);
    throw err;
  }
});

after(async () => {
  await lab?.teardown();
});

/** A test that prints the daemon's log when it fails. */
function labTest(name: string, fn: () => Promise<void>): void {
  test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`\n${lab.diagnostics()}\n`);
      throw err;
    }
  });
}

async function cliJson<T>(args: string[]): Promise<T> {
  const r = await lab.cli([...args, '--json']);
  assert.equal(r.code, 0, `syncwall ${args.join(' ')}: ${r.stderr}`);
  return r.json<T>();
}

function conns(...filter: string[]): Promise<Conn[]> {
  return cliJson<Conn[]>(['conns', 'list', ...filter]);
}

function stats(): Promise<Stats> {
  return cliJson<Stats>(['stats']);
}

async function reloadRules(text: string, recheck = false): Promise<{ ruleCount: number; removed: number }> {
  daemon.writeRules(text);
  return cliJson(['rules', 'reload', ...(recheck ? ['--recheck'] : [])]);
}

function counter(s: Stats, scope: keyof Stats, name: string): number {
  const v = s[scope][name];
  assert.equal(typeof v, 'number', `${scope} counter ${name} in ${JSON.stringify(s[scope])}`);
  return v as number;
}

function isStreamConn(c: Conn): boolean {
  return c.proto === 6 && c.dport === STREAM_PORT && c.src === SINGLE.client.v4;
}

labTest('curl over v4 and v6 succeeds and the client sends exactly one SYN per connection', async () => {
  const before = await tcpCounters(lab, 'cli');
  const targets = [
    [SINGLE.server.v4, 80],
    [SINGLE.server.v6, 80],
    [SINGLE.server.v4, 8080],
    [SINGLE.server.v6, 8080],
  ] as const;
  for (const [addr, port] of targets) {
    const r = await curl(lab, 'cli', addr, port);
    assert.equal(r.code, CURL_OK, `curl ${addr}:${port}: ${r.stderr}`);
    assert.equal(r.stdout, `hello from port ${port}\n`);
  }
  const afterCurl = await tcpCounters(lab, 'cli');
  // Each punted SYN was re-injected: no connection needed a second SYN.
  assert.equal(afterCurl.activeOpens - before.activeOpens, targets.length);
  assert.equal(afterCurl.synRetrans - before.synRetrans, 0);
});

labTest('a dropped port gets nothing, a rejected port a RST, an unlisted port nothing', async () => {
  for (const addr of [SINGLE.server.v4, SINGLE.server.v6]) {
    const dropped = await curl(lab, 'cli', addr, 82, { maxTimeS: 2 });
    assert.equal(dropped.code, CURL_TIMEOUT, `drop on ${addr}: ${dropped.stderr}`);
    const rejected = await curl(lab, 'cli', addr, 81, { maxTimeS: 10 });
    assert.equal(rejected.code, CURL_CONNECTION_REFUSED, `reject on ${addr}: ${rejected.stderr}`);
  }
  // 8081 matches no rule: the implicit final drop.
  const unlisted = await curl(lab, 'cli', SINGLE.server.v4, 8081, { maxTimeS: 2 });
  assert.equal(unlisted.code, CURL_TIMEOUT);
  assert.equal(httpRequests(http, 81).length, 0, 'the server never saw a request on the rejected port');
  assert.equal(httpRequests(http, 82).length, 0, 'the server never saw a request on the dropped port');
});

labTest('UDP request/response crosses the firewall (v4 and v6)', async () => {
  for (const addr of [SINGLE.server.v4, SINGLE.server.v6]) {
    assert.deepEqual(await udpRequest(lab, 'cli', addr, 5353, 3), { sent: 3, received: 3 }, `UDP to ${addr}`);
  }
  const udp = await conns('--proto', 'udp', '--port', '5353');
  const v6 = udp.find((c) => c.src === SINGLE.client.v6 && c.dst === SINGLE.server.v6);
  assert.ok(v6, `a v6 UDP flow in ${JSON.stringify(udp)}`);
  assert.equal(v6.state, 'replied');
  assert.equal(v6.ruleId, RULE.udp);
});

labTest('ping v4 and v6 through the firewall', async () => {
  for (const addr of [SINGLE.server.v4, SINGLE.server.v6]) {
    const r = await ping(lab, 'cli', addr, { count: 3 });
    // The first echo request was punted and re-injected, not lost.
    assert.equal(r.received, 3, r.output);
  }
});

labTest('a rules reload blocks new connections and keeps existing ones; --recheck cuts them', async () => {
  const stream = await VerifiedStream.start(lab, 'cli', SINGLE.server.v4, STREAM_PORT);
  try {
    await stream.waitForProgress(20_000, 20_000);

    const reply = await reloadRules(RULES_NARROWED);
    assert.equal(reply.ruleCount, 6);
    assert.equal(reply.removed, 0);
    await stream.waitForProgress(50_000, 20_000);
    assert.ok((await conns('--port', String(STREAM_PORT))).some(isStreamConn), 'the stream stays in the table');
    const blocked = await curl(lab, 'cli', SINGLE.server.v4, 8080, { maxTimeS: 2 });
    assert.equal(blocked.code, CURL_TIMEOUT, 'a new connection to 8080 is blocked');
    const blockedStream = await curl(lab, 'cli', SINGLE.server.v4, STREAM_PORT, { maxTimeS: 2 });
    assert.equal(blockedStream.code, CURL_TIMEOUT, 'a new connection to the stream port is blocked');

    const recheck = await reloadRules(RULES_NARROWED, true);
    assert.ok(recheck.removed >= 1, `recheck removed ${recheck.removed}`);
    await stream.waitForStall(15_000);
    assert.ok(!(await conns('--port', String(STREAM_PORT))).some(isStreamConn), 'the stream is gone from the table');
    const outcome = await stream.finish();
    assert.equal(outcome.mismatches, 0);
  } finally {
    await stream.proc.stop();
    await reloadRules(RULES);
  }
});

labTest('a daemon restart keeps an established TCP stream alive with its data intact', async () => {
  const stream = await VerifiedStream.start(lab, 'cli', SINGLE.server.v4, STREAM_PORT);
  await stream.waitForProgress(20_000, 20_000);
  const streamEntry = async (): Promise<Conn> => {
    const table = await conns('--port', String(STREAM_PORT));
    const entry = table.find(isStreamConn);
    assert.ok(entry, `the stream in ${JSON.stringify(table)}`);
    return entry;
  };
  const beforeStop = await streamEntry();
  assert.equal(beforeStop.state, 'established');
  assert.equal(beforeStop.ruleId, RULE.streams);

  const exit = await daemon.stop('SIGTERM');
  assert.equal(exit.code, 0, `syncwalld exit after SIGTERM: ${JSON.stringify(exit)}`);
  // The XDP program stays attached and the table pinned: established
  // traffic needs no controller.
  for (const { name } of lab.firewallInterfaces('fw')) {
    assert.ok(await lab.xdpAttached('fw', name), `XDP stays on ${name} while syncwalld is down`);
  }
  const verifiedAtStop = stream.verified();
  const verifiedWhileDown = await stream.waitForProgress(20_000, 20_000);

  await daemon.start();
  const afterStart = await streamEntry();
  assert.equal(afterStart.state, 'established');
  assert.equal(afterStart.ruleId, RULE.streams);
  // Every 1000-byte chunk sent while the daemon was down is at least one
  // packet the pinned table counted: XDP, not the stack, forwarded them.
  const chunksWhileDown = Math.floor((verifiedWhileDown - verifiedAtStop) / 1000);
  assert.ok(afterStart.packetsOrig - beforeStop.packetsOrig >= chunksWhileDown, `packets ${beforeStop.packetsOrig} -> ${afterStart.packetsOrig}, chunks ${chunksWhileDown}`);
  await stream.waitForProgress(50_000, 20_000);

  const outcome = await stream.finish();
  assert.equal(outcome.failure, null);
  assert.equal(outcome.mismatches, 0);
  assert.ok(outcome.verified >= 90_000, `verified ${outcome.verified} bytes`);
});

labTest('conns list and stats (--json) match the traffic', async () => {
  const before = await stats();
  const localPort = 21234; // below the ephemeral range (test/lab/buckets.ts)
  const r = await curl(lab, 'cli', SINGLE.server.v6, 8080, { localPort });
  assert.equal(r.code, CURL_OK, r.stderr);
  const dropped = await curl(lab, 'cli', SINGLE.server.v4, 82, { maxTimeS: 2 });
  assert.equal(dropped.code, CURL_TIMEOUT);

  const list = await conns('--family', '6', '--port', String(localPort));
  assert.equal(list.length, 1, JSON.stringify(list));
  const c = list[0]!;
  assert.deepEqual(
    { family: c.family, proto: c.proto, src: c.src, sport: c.sport, dst: c.dst, dport: c.dport, ruleId: c.ruleId },
    { family: 6, proto: 6, src: SINGLE.client.v6, sport: localPort, dst: SINGLE.server.v6, dport: 8080, ruleId: RULE.web },
  );
  // curl closed the connection: both FINs and the last ACK were seen.
  assert.equal(c.state, 'time_wait');
  assert.ok(c.packetsOrig >= 3 && c.packetsReply >= 3, `packets ${c.packetsOrig}/${c.packetsReply}`);
  assert.ok(c.bytesOrig > 0 && c.bytesReply > 0, `bytes ${c.bytesOrig}/${c.bytesReply}`);

  const afterStats = await stats();
  const rose = (scope: keyof Stats, name: string, by = 1): void => {
    assert.ok(counter(afterStats, scope, name) - counter(before, scope, name) >= by, `${scope}.${name} rose by ${by}`);
  };
  rose('datapath', 'punt_new', 2);
  rose('controller', 'punts_accepted');
  rose('controller', 'punts_dropped');
  rose('controller', 'reinjected');
  assert.equal(counter(afterStats, 'controller', 'reinject_errors'), 0);

  const status = await cliJson<{ ruleCount: number; interfaces: { name: string; zone: string }[]; connections: number }>(['status']);
  assert.equal(status.ruleCount, 8);
  assert.deepEqual(
    status.interfaces.map((i) => ({ name: i.name, zone: i.zone })),
    lab.firewallInterfaces('fw'),
  );
  // counted by the expiry sweeper's passes (every second by default): the connections above show up by the next one
  await waitFor(async () => (await cliJson<{ connections: number }>(['status'])).connections >= 1, { timeoutMs: 10_000, intervalMs: 250, what: 'status to count the connections' });
});

// Policy under test: IP fragments (v4 and v6, first and later ones) are
// dropped and counted as drop_fragment; protocols without ports are tracked
// as generic flows (ports 0) that rules allow by protocol number, and fall to
// the implicit drop otherwise.
labTest('fragments are dropped and counted; an untracked protocol follows the rules', async () => {
  const before = await stats();
  for (const addr of [SINGLE.server.v4, SINGLE.server.v6]) {
    // 3000 bytes of ICMP payload leave the client as three fragments.
    const r = await ping(lab, 'cli', addr, { count: 2, size: 3000 });
    assert.equal(r.received, 0, r.output);
  }
  const afterFrag = await stats();
  assert.ok(
    counter(afterFrag, 'datapath', 'drop_fragment') - counter(before, 'datapath', 'drop_fragment') >= 12,
    'two echo requests of three fragments each, per family',
  );

  const allowed4 = await startRawReceiver(lab, 'srv', 4, 253);
  const allowed6 = await startRawReceiver(lab, 'srv', 6, 253);
  const denied = await startRawReceiver(lab, 'srv', 4, 254);
  await sendRaw(lab, 'cli', SINGLE.server.v4, 254, 'marker-denied');
  await sendRaw(lab, 'cli', SINGLE.server.v4, 253, 'marker-allowed-v4');
  await sendRaw(lab, 'cli', SINGLE.server.v6, 253, 'marker-allowed-v6');
  await waitFor(() => rawReceived(allowed4, 'marker-allowed-v4'), { timeoutMs: 10_000, what: 'protocol 253 over v4' });
  await waitFor(() => rawReceived(allowed6, 'marker-allowed-v6'), { timeoutMs: 10_000, what: 'protocol 253 over v6' });
  // The denied packet went first on the same path; it would have arrived by now.
  assert.equal(rawReceived(denied, 'marker-denied'), false);

  const generic = await conns('--proto', '253');
  assert.equal(generic.length, 2, JSON.stringify(generic));
  for (const c of generic) {
    assert.equal(c.ruleId, RULE.proto253);
    assert.equal(c.sport, 0);
    assert.equal(c.dport, 0);
    assert.equal(c.state, 'unreplied');
  }
  assert.equal((await conns('--proto', '254')).length, 0);
});
