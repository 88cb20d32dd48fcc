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
  connections: number;
  tableCapacity: number;
}

export interface StatsView {
  /** Data-plane counters summed over CPUs, by name (e.g. drop_out_of_window). */
  datapath: Record<string, bigint>;
  /** Controller counters by name (e.g. punts_accepted, reinject_errors). */
  controller: Record<string, bigint>;
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
}
