// Loads proto/management.proto at run time and describes its messages as
// proto-loader hands them over: camelCase fields, uint64 as decimal strings
// (bigint does not survive protobufjs), unset proto3 `optional` fields absent.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { findInstallFile } from '../install-files.js';

const definition = protoLoader.loadSync(findInstallFile('proto/management.proto'), { longs: String, defaults: true });

export const managementService = definition['syncwall.management.v1.Management'] as grpc.ServiceDefinition;

/** A uint64 on the wire as proto-loader gives it (we send strings too). */
export type WireU64 = string;

export interface WireConnFilter {
  family?: number;
  proto?: number;
  addr?: string;
  port?: number;
  state?: string;
}

export interface WireConnection {
  family: number;
  proto: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  state: string;
  flags: string[];
  ruleId: number;
  helper: string;
  ownerNode: number;
  version: number;
  ageMs: WireU64;
  idleMs: WireU64;
  packetsOrig: WireU64;
  bytesOrig: WireU64;
  packetsReply: WireU64;
  bytesReply: WireU64;
}

export interface WireInterface {
  name: string;
  zone: string;
  ifindex: number;
  xdpMode: string;
}

export interface WireStatusReply {
  version: string;
  nodeId: number;
  uptimeMs: WireU64;
  interfaces: WireInterface[];
  rulesFile: string;
  ruleCount: number;
  rulesLoadedAt: string;
  connections: WireU64;
  connectionsCountedMsAgo: WireU64;
  tableCapacity: WireU64;
  /** Absent (or null) on a single node. */
  cluster?: WireClusterStatus | null;
}

export interface WireClusterStatus {
  clusterId: string;
  nodeId: number;
  state: string;
  mode: string;
  backups: number;
  syncNode: string;
  syncCommon: string;
  members: number[];
  bucketsOwned: number;
  bucketsBackedUp: number;
}

export interface WirePeer {
  id: number;
  address: string;
  connected: boolean;
  state: string;
  incarnation: string;
  lastHeartbeatAgoMs?: WireU64;
  sentSeq: WireU64;
  ackedSeq: WireU64;
  unacked: WireU64;
  lagMs?: WireU64;
  bucketsOwned: number;
}

export interface WirePeersReply {
  peers: WirePeer[];
}

export interface WireSetSyncModeRequest {
  stateClass: string;
  mode: string;
}

export interface WireSetSyncModeReply {
  stateClass: string;
  mode: string;
  previous: string;
}

export interface WireDrainReply {
  bucketsHandedOver: number;
  entriesPushed: WireU64;
  acked: boolean;
  durationMs: WireU64;
}

export interface WireDeleteConnectionsReply {
  deleted: WireU64;
}

export interface WireReloadRulesRequest {
  recheck: boolean;
}

export interface WireReloadRulesReply {
  ruleCount: number;
  removed: WireU64;
}

export interface WireStatsReply {
  datapath: Record<string, WireU64>;
  controller: Record<string, WireU64>;
  cluster: Record<string, WireU64>;
}
