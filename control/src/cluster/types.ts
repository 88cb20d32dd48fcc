// The cluster's shared vocabulary: node states, state classes, sync modes and
// the payloads peers exchange. Independent of the C struct layout on purpose:
// replication carries these, converted to protobuf by entry-proto.ts, so two
// nodes running different versions still understand each other.
import type { FlowKey, TcpWindow } from '../bpf/codec.js';

export type NodeState = 'joining' | 'active' | 'draining' | 'failed';
export type StateClass = 'node' | 'common';
export type SyncMode = 'on-demand' | 'periodic' | 'combined' | 'off';

/** One replicated connection entry, independent of struct layout. Times are relative (clocks differ between nodes). */
export interface FlowRecord {
  key: FlowKey;
  state: number;
  flags: number;
  helper: number;
  lastDir: number;
  ownerNode: number;
  ruleId: number;
  version: number;
  win: [TcpWindow, TcpWindow];
  packets: [bigint, bigint];
  bytes: [bigint, bigint];
  /** now - created on the sender */
  ageMs: number;
  /** now - last_seen on the sender */
  idleMs: number;
}

export type SyncPayload =
  /** replication (on-demand or periodic) */
  | { kind: 'entries'; cls: StateClass; entries: FlowRecord[] }
  /** flows closed/expired/deleted on the owner */
  | { kind: 'removes'; keys: FlowKey[] }
  /** trigger c (buckets, all, common) and e (flows) */
  | { kind: 'request'; requestId: number; flows?: FlowKey[]; buckets?: number[]; all?: boolean; common?: boolean }
  /** answer to a request, chunked (many messages; `last` on the final one) */
  | { kind: 'bulk'; requestId: number; entries: FlowRecord[]; last: boolean }
  /** drain: "I stop forwarding these now" (after pushing entries) */
  | { kind: 'handover'; buckets: number[] };

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
