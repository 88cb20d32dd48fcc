// Translation between the backend's views (bigint counters, numbers for
// durations) and wire messages. Each pair lives side by side so a new field
// is added to both directions at once.
import type { ClusterStatusView, ConnView, DrainResult, NodeStateName, PeerView, ReloadResult, StatsView, StatusView, SyncModeChange } from './backend.js';
import type {
  WireClusterStatus,
  WireConnection,
  WireDrainReply,
  WirePeer,
  WireReloadRulesReply,
  WireSetSyncModeReply,
  WireStatsReply,
  WireStatusReply,
} from './proto.js';

export function connToWire(c: ConnView): WireConnection {
  return {
    ...c,
    flags: [...c.flags],
    ageMs: String(c.ageMs),
    idleMs: String(c.idleMs),
    packetsOrig: String(c.packetsOrig),
    bytesOrig: String(c.bytesOrig),
    packetsReply: String(c.packetsReply),
    bytesReply: String(c.bytesReply),
  };
}

export function connFromWire(w: WireConnection): ConnView {
  return {
    ...w,
    family: w.family === 6 ? 6 : 4,
    ageMs: Number(w.ageMs),
    idleMs: Number(w.idleMs),
    packetsOrig: BigInt(w.packetsOrig),
    bytesOrig: BigInt(w.bytesOrig),
    packetsReply: BigInt(w.packetsReply),
    bytesReply: BigInt(w.bytesReply),
  };
}

export function statusToWire(s: StatusView): WireStatusReply {
  const { cluster, ...rest } = s;
  return {
    ...rest,
    interfaces: s.interfaces.map((i) => ({ ...i })),
    uptimeMs: String(s.uptimeMs),
    connections: String(s.connections),
    connectionsCountedMsAgo: String(s.connectionsCountedMsAgo),
    tableCapacity: String(s.tableCapacity),
    ...(cluster ? { cluster: { ...cluster, members: [...cluster.members] } } : {}),
  };
}

export function statusFromWire(w: WireStatusReply): StatusView {
  const { cluster, ...rest } = w;
  return {
    ...rest,
    interfaces: w.interfaces.map((i) => ({ ...i })),
    uptimeMs: Number(w.uptimeMs),
    connections: Number(w.connections),
    connectionsCountedMsAgo: Number(w.connectionsCountedMsAgo),
    tableCapacity: Number(w.tableCapacity),
    ...(cluster ? { cluster: clusterFromWire(cluster) } : {}),
  };
}

function clusterFromWire(w: WireClusterStatus): ClusterStatusView {
  return { ...w, state: w.state as NodeStateName, syncNode: w.syncNode as ClusterStatusView['syncNode'], syncCommon: w.syncCommon as ClusterStatusView['syncCommon'], members: [...w.members] };
}

export function peerToWire(p: PeerView): WirePeer {
  const { lastHeartbeatAgoMs, lagMs, ...rest } = p;
  return {
    ...rest,
    sentSeq: String(p.sentSeq),
    ackedSeq: String(p.ackedSeq),
    unacked: String(p.unacked),
    ...(lastHeartbeatAgoMs === null ? {} : { lastHeartbeatAgoMs: String(Math.round(lastHeartbeatAgoMs)) }),
    ...(lagMs === null ? {} : { lagMs: String(Math.round(lagMs)) }),
  };
}

export function peerFromWire(w: WirePeer): PeerView {
  return {
    id: w.id,
    address: w.address,
    connected: w.connected,
    state: w.state as PeerView['state'],
    incarnation: w.incarnation,
    lastHeartbeatAgoMs: w.lastHeartbeatAgoMs === undefined ? null : Number(w.lastHeartbeatAgoMs),
    sentSeq: Number(w.sentSeq),
    ackedSeq: Number(w.ackedSeq),
    unacked: Number(w.unacked),
    lagMs: w.lagMs === undefined ? null : Number(w.lagMs),
    bucketsOwned: w.bucketsOwned,
  };
}

export function syncModeChangeFromWire(w: WireSetSyncModeReply): SyncModeChange {
  return { stateClass: w.stateClass as SyncModeChange['stateClass'], mode: w.mode as SyncModeChange['mode'], previous: w.previous as SyncModeChange['previous'] };
}

export function drainToWire(d: DrainResult): WireDrainReply {
  return { ...d, entriesPushed: String(d.entriesPushed), durationMs: String(d.durationMs) };
}

export function drainFromWire(w: WireDrainReply): DrainResult {
  return { ...w, entriesPushed: Number(w.entriesPushed), durationMs: Number(w.durationMs) };
}

export function statsToWire(s: StatsView): WireStatsReply {
  return { datapath: mapCounters(s.datapath, String), controller: mapCounters(s.controller, String), cluster: mapCounters(s.cluster, String) };
}

export function statsFromWire(w: WireStatsReply): StatsView {
  return { datapath: mapCounters(w.datapath, BigInt), controller: mapCounters(w.controller, BigInt), cluster: mapCounters(w.cluster ?? {}, BigInt) };
}

export function reloadToWire(r: ReloadResult): WireReloadRulesReply {
  return { ruleCount: r.ruleCount, removed: String(r.removed) };
}

export function reloadFromWire(w: WireReloadRulesReply): ReloadResult {
  return { ruleCount: w.ruleCount, removed: Number(w.removed) };
}

function mapCounters<A, B>(counters: Record<string, A>, convert: (value: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(counters).map(([name, value]) => [name, convert(value)]));
}
