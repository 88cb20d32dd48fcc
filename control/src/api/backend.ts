// What the management API needs from the running daemon. The gRPC service
// (api/server.ts) translates between this interface and proto messages; the
// engine implements it. Keeping it narrow lets the service be tested with a
// real gRPC client against a small in-memory backend.

export interface ConnFilter {
  family?: 4 | 6;
  proto?: number;
  /** Prefix such as 10.0.0.0/8 or 2001:db8::/32; matches either endpoint. */
  addr?: string;
  /** Matches either endpoint's port. */
  port?: number;
  state?: string;
}

export interface ConnView {
  family: 4 | 6;
  proto: number;
  /** Originator side. */
  src: string;
  sport: number;
  /** Responder side. */
  dst: string;
  dport: number;
  state: string;
  flags: string[];
  ruleId: number;
  helper: string;
  ownerNode: number;
  version: number;
  ageMs: number;
  idleMs: number;
  packetsOrig: bigint;
  bytesOrig: bigint;
  packetsReply: bigint;
  bytesReply: bigint;
}

export interface StatusView {
  version: string;
  nodeId: number;
  uptimeMs: number;
  interfaces: { name: string; zone: string; ifindex: number; xdpMode: string }[];
  rulesFile: string;
  ruleCount: number;
  rulesLoadedAt: string;
  /** As of the expiry sweeper's last full pass (connectionsCountedMsAgo ago). */
  connections: number;
  connectionsCountedMsAgo: number;
  tableCapacity: number;
  /** Present on a cluster member. */
  cluster?: ClusterStatusView;
}

export type NodeStateName = 'joining' | 'active' | 'draining' | 'failed';
export type StateClassName = 'node' | 'common';
export type SyncModeName = 'on-demand' | 'periodic' | 'combined' | 'off';

export interface ClusterStatusView {
  clusterId: string;
  nodeId: number;
  state: NodeStateName;
  /** load-sharing or standby */
  mode: string;
  /** k: backups per bucket */
  backups: number;
  syncNode: SyncModeName;
  syncCommon: SyncModeName;
  /** Nodes that own buckets now. */
  members: number[];
  bucketsOwned: number;
  bucketsBackedUp: number;
}

export interface PeerView {
  id: number;
  address: string;
  connected: boolean;
  state: NodeStateName | 'unknown';
  /** Random per process start of the peer ('' before its hello). */
  incarnation: string;
  lastHeartbeatAgoMs: number | null;
  sentSeq: number;
  ackedSeq: number;
  unacked: number;
  /** Age of the oldest unacked message: the sync lag. */
  lagMs: number | null;
  bucketsOwned: number;
}

export interface SyncModeChange {
  stateClass: StateClassName;
  mode: SyncModeName;
  previous: SyncModeName;
}

export interface DrainResult {
  bucketsHandedOver: number;
  entriesPushed: number;
  /** Every peer acknowledged the pushed entries and the hand-over in time. */
  acked: boolean;
  durationMs: number;
}

export interface StatsView {
  /** Data-plane counters summed over CPUs, by name (e.g. drop_out_of_window). */
  datapath: Record<string, bigint>;
  /** Controller counters by name (e.g. punts_accepted, reinject_errors). */
  controller: Record<string, bigint>;
  /** Cluster sync counters (empty on a single node). */
  cluster: Record<string, bigint>;
}

export interface ReloadResult {
  ruleCount: number;
  /** Connections removed because the new rules no longer allow them (recheck). */
  removed: number;
}

export interface ManagementBackend {
  status(): StatusView;
  listConnections(filter: ConnFilter): AsyncIterable<ConnView>;
  /** Deletes matching connections (all when the filter is empty); returns how many. */
  deleteConnections(filter: ConnFilter): Promise<number>;
  reloadRules(recheck: boolean): Promise<ReloadResult>;
  stats(): StatsView;
  /** Cluster peers; PreconditionError on a single node. */
  peers(): PeerView[];
  /** Switches a state class's sync mode at run time; PreconditionError on a single node. */
  setSyncMode(stateClass: StateClassName, mode: SyncModeName): SyncModeChange;
  /** Drains this node (trigger d); PreconditionError on a single node or when not active. */
  drain(): Promise<DrainResult>;
}
