// A bulk transfer (join answer, re-replication, periodic pass) must never
// overflow a peer's send queue, which drops the oldest payloads when full:
// the link tells bulk senders when there is room, and the table walks wait
// for it between chunks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterStats } from '../../control/src/cluster/cluster-stats.js';
import { computeOwnership } from '../../control/src/cluster/ownership.js';
import { PeerLink } from '../../control/src/cluster/peer-link.js';
import { Replicator } from '../../control/src/cluster/replicator.js';
import { StateServer } from '../../control/src/cluster/state-server.js';
import { SyncModes } from '../../control/src/cluster/sync-modes.js';
import { TransportCounters } from '../../control/src/cluster/transport-stats.js';
import type { SyncPayload } from '../../control/src/cluster/types.js';
import { createLogger } from '../../control/src/log.js';
import { entry, MemoryTable, tcpKey } from './cluster-memory-table.js';

const log = createLogger('error');
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function link(maxQueueBytes: number): { link: PeerLink; counters: TransportCounters } {
  const counters = new TransportCounters();
  const l = new PeerLink(
    { id: 2, address: 'peer', failureTimeoutMs: 60_000, maxQueueBytes, maxFrameBytes: 1 << 20 },
    { message: () => undefined, peerState: () => undefined },
    counters,
    log,
  );
  l.attach({ write: () => true, once: () => undefined }, () => undefined);
  return { link: l, counters };
}

const ack = (seq: number) => ({ ack: seq, firstSeq: 0, payloads: [], hello: null, heartbeat: null });

test('a link has room below half its bound; acks that drain it wake the bulk sender', async () => {
  const { link: l, counters } = link(1000);
  l.enqueue(new Uint8Array(400), 1);
  let woken = false;
  await l.waitForRoom();
  l.enqueue(new Uint8Array(400), 1);
  void l.waitForRoom().then(() => (woken = true));
  await nextTurn();
  assert.equal(woken, false, 'queue at 800 of 1000 bytes: no room');
  l.onFrame(ack(1));
  await nextTurn();
  assert.equal(woken, true, 'acked down to 400 bytes');
  assert.equal(counters.queueDrops, 0);
  l.shutdown();
});

test('shutting a link down wakes its bulk senders', async () => {
  const { link: l } = link(1000);
  l.enqueue(new Uint8Array(900), 1);
  const waiting = l.waitForRoom();
  l.shutdown();
  await waiting;
});

const TOTAL = 2500;
const CHUNK = 1000;

/**
 * A bulk table walk over TOTAL entries, CHUNK a chunk, against a peer that
 * has room only when the test says so: `start` gets the send and
 * waitForRoom functions for the walker and returns the walk. Checks that the
 * first chunk waits for room and that every record arrives once it is given.
 */
async function pacedWalk(table: MemoryTable, start: (send: (to: number, p: SyncPayload) => number, waitForRoom: () => Promise<void>) => Promise<unknown>): Promise<SyncPayload[]> {
  for (let n = 0; n < TOTAL; n++) table.put(tcpKey(n), entry());
  const sent: SyncPayload[] = [];
  let release: () => void = () => undefined;
  let waits = 0;
  const done = start(
    (_to, payload) => sent.push(payload),
    () => {
      waits++;
      return new Promise<void>((resolve) => (release = resolve));
    },
  );
  const records = (): number => sent.reduce((sum, p) => sum + (p.kind === 'bulk' || p.kind === 'entries' ? p.entries.length : 0), 0);
  await nextTurn();
  assert.equal(waits, 1);
  assert.ok(records() <= CHUNK, `${records()} records sent before the peer had room`);
  for (let i = 0; i < 3; i++) {
    release();
    await nextTurn();
    await nextTurn();
  }
  await done;
  assert.equal(records(), TOTAL);
  return sent;
}

test('the state server sends one table chunk, then waits for room before the next', async () => {
  const table = new MemoryTable();
  const sent = await pacedWalk(table, (send, waitForRoom) =>
    new StateServer({
      table,
      selfId: 1,
      current: () => computeOwnership([1], 'load-sharing', 0),
      send,
      waitForRoom,
      stats: new ClusterStats(),
      monotonicNs: () => 1_000_000_000n,
      chunk: CHUNK,
    }).answer(2, { kind: 'request', requestId: 9, all: true }),
  );
  const last = sent.at(-1);
  assert.ok(last?.kind === 'bulk' && last.last, 'the final bulk message says last');
});

test('a periodic pass sends one table chunk, then waits for room before the next', async () => {
  // node 1 owns every bucket (standby) and sends each entry to its backup, node 2
  const table = new MemoryTable();
  const ownership = computeOwnership([1, 2], 'standby', 1);
  let replicator: Replicator | undefined;
  await pacedWalk(table, (send, waitForRoom) => {
    replicator = new Replicator({
      table,
      view: { selfId: 1, current: () => ownership, next: () => undefined, livePeers: () => [2] },
      modes: new SyncModes({ node: 'periodic', common: 'periodic' }),
      send,
      waitForRoom,
      stats: new ClusterStats(),
      log,
      monotonicNs: () => 1_000_000_000n,
      lastSeenGranularityNs: 1_000_000_000n,
      chunk: CHUNK,
      queueCapacity: 16,
    });
    return replicator.periodicPass();
  });
  replicator?.close();
});
