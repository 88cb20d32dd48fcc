// The cluster's shared vocabulary: node states, state classes, sync modes and
// the payloads peers exchange. On the wire every payload is protobuf
// (entry-proto.ts, transport-codec.ts), so two nodes running different
// versions still understand each other; in memory, connection entries stay
// packed struct bytes (flow-records.ts).
import type { FlowKey } from '../bpf/codec.js';
import type { FlowKeys } from './flow-keys.js';
import type { FlowRecords } from './flow-records.js';

export type NodeState = 'joining' | 'active' | 'draining' | 'failed';
export type StateClass = 'node' | 'common';
export type SyncMode = 'on-demand' | 'periodic' | 'combined' | 'off';

/**
 * A related connection a protocol helper expects (common state, e.g. an FTP
 * data connection): from `from` (port `fromPort`, 0 any) to to:toPort,
 * admitted without a rule decision while unused and unexpired.
 */
export interface ExpectationRecord {
  family: number;
  proto: number;
  /** 4 bytes for IPv4, 16 for IPv6. */
  from: Uint8Array;
  fromPort: number;
  to: Uint8Array;
  toPort: number;
  /** enum helper_id of the helper that created it. */
  helper: number;
  /** The control connection it belongs to: it goes when that connection goes. */
  control: FlowKey;
  /** Time left before it expires unused (relative: clocks differ between nodes). */
  ttlMs: number;
}

export type SyncPayload =
  /** replication (on-demand or periodic) */
  | { kind: 'entries'; cls: StateClass; entries: FlowRecords }
  /** flows closed/expired/deleted on the owner */
  | { kind: 'removes'; keys: FlowKeys }
  /** trigger c (buckets, all, common) and e (flows) */
  | { kind: 'request'; requestId: number; flows?: FlowKey[]; buckets?: number[]; all?: boolean; common?: boolean }
  /** answer to a request, chunked (many messages; `last` on the final one) */
  | { kind: 'bulk'; requestId: number; entries: FlowRecords; last: boolean }
  /** drain: "I stop forwarding these now" (after pushing entries) */
  | { kind: 'handover'; buckets: number[] }
  /** trigger f: helper expectations created (sent at once, acks awaited by the hold) and removed (used, control gone) */
  | { kind: 'expectations'; add: ExpectationRecord[]; remove: ExpectationRecord[] };

export interface PeerInfo {
  id: number;
  address: string;
  connected: boolean;
  state: NodeState | 'unknown';
  incarnation: string;
  lastHeartbeatAgoMs: number | null;
  sentSeq: number;
  ackedSeq: number;
  unacked: number;
  /** age of the oldest unacked message */
  lagMs: number | null;
}
