// The peer sync transport over real gRPC on 127.0.0.1 with real certificates.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SyncPayload } from '../../control/src/cluster/types.js';
import { keysOf, readable, recordsOf, sampleRecord } from './flow-records-fixture.js';
import { addr, makeCertDirs, startNode, waitFor, type Node } from './transport-fixture.js';

let certs: ReturnType<typeof makeCertDirs>;
before(() => {
  certs = makeCertDirs();
});
after(() => certs.cleanup());

const entries = (from: number, n: number): SyncPayload => ({ kind: 'entries', cls: 'node', entries: recordsOf(Array.from({ length: n }, (_, i) => sampleRecord(from + i))) });

async function stopAll(...nodes: (Node | undefined)[]): Promise<void> {
  await Promise.all(nodes.map((n) => n?.transport.stop()));
}

async function pair(): Promise<[Node, Node]> {
  const b = await startNode({ id: 2, peers: [{ id: 1, address: 'dialled by 1' }], certDir: certs.good });
  const a = await startNode({ id: 1, peers: [{ id: 2, address: addr(b) }], certDir: certs.good });
  await waitFor('hello both ways', () => a.states.length > 0 && b.states.length > 0);
  return [a, b];
}

test('two transports exchange entries both ways, every payload acked', async () => {
  const [a, b] = await pair();
  try {
    const sent: SyncPayload[] = [entries(0, 3), { kind: 'removes', keys: keysOf([sampleRecord(1).key]) }, { kind: 'request', requestId: 7, buckets: [1, 1023], common: true }];
    const seqs = sent.map((p) => a.transport.send(2, p));
    const bulk: SyncPayload = { kind: 'bulk', requestId: 7, entries: recordsOf([sampleRecord(42)]), last: true };
    const back = b.transport.send(1, bulk);
    assert.deepEqual(await Promise.all(seqs.map((s) => a.transport.waitAcked(2, s, 10000))), [true, true, true]);
    assert.equal(await b.transport.waitAcked(1, back, 10000), true);
    assert.deepEqual(b.messages.map((m) => readable(m.payload)), sent.map(readable));
    assert.deepEqual(a.messages.map((m) => ({ from: m.from, payload: readable(m.payload) })), [{ from: 2, payload: readable(bulk) }]);
    const [peer] = a.transport.peers();
    assert.equal(peer?.connected, true);
    assert.equal(peer?.sentSeq, 3);
    assert.equal(peer?.ackedSeq, 3);
    assert.equal(peer?.unacked, 0);
    assert.equal(a.transport.stats().flowsSent, 4n); // 3 entries + 1 removed key
    assert.equal(b.transport.stats().flowsReceived, 4n);
  } finally {
    await stopAll(a, b);
  }
});

test('local state reaches the peer; hello reports the peer incarnation', async () => {
  const [a, b] = await pair();
  try {
    assert.deepEqual(b.states[0], { id: 1, state: 'joining', incarnation: a.incarnation });
    assert.deepEqual(a.states[0], { id: 2, state: 'joining', incarnation: b.incarnation });
    a.transport.setLocalState('active');
    await waitFor('state active at b', () => b.states.some((s) => s.id === 1 && s.state === 'active'));
  } finally {
    await stopAll(a, b);
  }
});

test('waitAcked answers false when the peer never acks in time', async () => {
  const b = await startNode({ id: 2, peers: [{ id: 1, address: '-' }], certDir: certs.good });
  const port = b.transport.port;
  await b.transport.stop();
  const a = await startNode({ id: 1, peers: [{ id: 2, address: `127.0.0.1:${port}` }], certDir: certs.good });
  try {
    const seq = a.transport.send(2, entries(0, 1));
    assert.equal(await a.transport.waitAcked(2, seq, 200), false);
    assert.equal(a.transport.peers()[0]?.unacked, 1);
  } finally {
    await stopAll(a);
  }
});

test('a heartbeat timeout reports the peer failed; a restart with a new incarnation is reported and gets the unacked payloads', async () => {
  // b dies upon the first payload, before it can ack: a must resend it to the restarted b
  const b = await startNode({
    id: 2,
    peers: [{ id: 1, address: '-' }],
    certDir: certs.good,
    onMessage: (node) => void node.transport.stop(),
  });
  const port = b.transport.port;
  const a = await startNode({ id: 1, peers: [{ id: 2, address: `127.0.0.1:${port}` }], certDir: certs.good });
  let b2: Node | undefined;
  try {
    await waitFor('connected', () => a.states.length > 0);
    const seq1 = a.transport.send(2, entries(0, 2));
    await waitFor('b received and died', () => b.messages.length === 1);
    await waitFor('a reports b failed', () => a.states.some((s) => s.id === 2 && s.state === 'failed')).catch((err: Error) => {
      throw new Error(`${err.message}; a saw ${JSON.stringify(a.states)}, peers ${JSON.stringify(a.transport.peers())}\n${a.logs.join('')}`, { cause: err });
    });
    const seq2 = a.transport.send(2, entries(100, 1));
    b2 = await startNode({ id: 2, peers: [{ id: 1, address: '-' }], certDir: certs.good, listen: `127.0.0.1:${port}` });
    assert.equal(await a.transport.waitAcked(2, seq2, 15000), true);
    assert.equal(await a.transport.waitAcked(2, seq1, 0), true);
    assert.deepEqual(b2.messages.map((m) => readable(m.payload)), [entries(0, 2), entries(100, 1)].map(readable));
    assert.deepEqual(a.states.at(-1), { id: 2, state: 'joining', incarnation: b2.incarnation });
    assert.notEqual(b2.incarnation, b.incarnation);
    const stats = a.transport.stats();
    assert.ok(stats.payloadsResent! >= 1n, `resent ${stats.payloadsResent}`);
    assert.ok(stats.heartbeatTimeouts! >= 1n);
  } finally {
    await stopAll(a, b, b2);
  }
});

test('a peer whose certificate is from another CA is refused, both as client and as server', async () => {
  const b = await startNode({ id: 2, peers: [{ id: 1, address: '-' }], certDir: certs.good });
  const intruder = await startNode({ id: 1, peers: [{ id: 2, address: addr(b) }], certDir: certs.foreign });
  const fakeServer = await startNode({ id: 3, peers: [{ id: 1, address: '-' }], certDir: certs.foreign });
  const a = await startNode({ id: 1, peers: [{ id: 3, address: addr(fakeServer) }], certDir: certs.good });
  try {
    await waitFor('intruder gave up a few times', () => intruder.transport.stats().dialFailures! >= 2n);
    await waitFor('a gave up a few times', () => a.transport.stats().dialFailures! >= 2n);
    assert.deepEqual(b.states, []);
    assert.deepEqual(fakeServer.states, []);
    assert.deepEqual(a.states, []);
    assert.equal(b.transport.peers()[0]?.connected, false);
    // the dialling side names the TLS failure
    assert.ok(a.logs.some((l) => l.includes('sync dial failed') && /certif/i.test(l)), a.logs.join(''));
  } finally {
    await stopAll(a, b, intruder, fakeServer);
  }
});

test('a peer claiming another node id than its certificate names is refused', async () => {
  const b = await startNode({ id: 2, peers: [{ id: 1, address: '-' }, { id: 3, address: '-' }], certDir: certs.good });
  // holds node 3's valid certificate but says it is node 1
  const liar = await startNode({ id: 1, peers: [{ id: 2, address: addr(b) }], certDir: certs.good, certId: 3 });
  // dials b's address believing it to be node 3: b's certificate names node 2
  const confused = await startNode({ id: 1, peers: [{ id: 3, address: addr(b) }], certDir: certs.good });
  try {
    await waitFor('b refused the liar', () => b.transport.stats().peersRefused! >= 1n);
    await waitFor('the liar saw the refusal', () => liar.transport.stats().refusedByPeers! >= 1n);
    await waitFor('confused refused b', () => confused.transport.stats().peersRefused! >= 1n);
    assert.deepEqual(b.states, []);
    assert.deepEqual(liar.states, []);
    assert.deepEqual(confused.states, []);
    assert.ok(b.logs.some((l) => l.includes('claims to be node 1 but its certificate names node 3')), b.logs.join(''));
    assert.ok(confused.logs.some((l) => l.includes('its certificate names node 2, not node 3')), confused.logs.join(''));
  } finally {
    await stopAll(b, liar, confused);
  }
});
