// Expectations are common state: they go to every live peer, at once, in
// every sync mode but off (an expectation is needed within milliseconds and
// lives a minute, so waiting for a periodic pass would defeat it). The data
// connection may come from any source port, so which node will own it
// cannot be known: a hold waits for every peer the expectation was sent to,
// bounded by the hold timeout.
import type { ExpectationRecord, SyncPayload } from '../cluster/types.js';

/** What the cluster node offers for common state outside the connection table. */
export interface CommonStateChannel {
  /** Peers that receive common state now. */
  livePeers(): readonly number[];
  /** The common-state sync mode is off. */
  commonSyncOff(): boolean;
  /** Queues a payload for a peer; returns its seq. */
  send(to: number, payload: SyncPayload): number;
  /** True once the peer acked seq; false after timeoutMs. */
  waitAcked(to: number, seq: number, timeoutMs: number): Promise<boolean>;
}

/**
 * This node's expectations as the cluster sees them: what peers created or
 * removed is applied here, and a joining peer is sent the live ones (it
 * missed their creation).
 */
export interface SharedExpectations {
  applyPeer(add: readonly ExpectationRecord[], remove: readonly ExpectationRecord[]): void;
  live(): ExpectationRecord[];
}

export type Publication =
  /** Sent: acked(ms) resolves true when every peer acked, false at the timeout. */
  | { kind: 'sent'; acked(timeoutMs: number): Promise<boolean> }
  /** Nothing sent: common-state sync is off. */
  | { kind: 'sync-off' }
  /** Nothing sent: a single node, or no live peer. */
  | { kind: 'alone' };

export interface ExpectationSync {
  publish(add: readonly ExpectationRecord[], remove: readonly ExpectationRecord[]): Publication;
}

const SYNC_OFF: Publication = { kind: 'sync-off' };
export const ALONE: Publication = { kind: 'alone' };

export class ClusterExpectationSync implements ExpectationSync {
  constructor(private readonly channel: CommonStateChannel) {}

  publish(add: readonly ExpectationRecord[], remove: readonly ExpectationRecord[]): Publication {
    const { channel } = this;
    if (channel.commonSyncOff()) return SYNC_OFF;
    const peers = channel.livePeers();
    if (peers.length === 0) return ALONE;
    const payload: SyncPayload = { kind: 'expectations', add: [...add], remove: [...remove] };
    const sent = peers.map((peer) => [peer, channel.send(peer, payload)] as const);
    return {
      kind: 'sent',
      acked: async (timeoutMs) => (await Promise.all(sent.map(([peer, seq]) => channel.waitAcked(peer, seq, timeoutMs)))).every(Boolean),
    };
  }
}
