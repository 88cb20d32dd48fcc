// Translation between the backend's views (bigint counters, numbers for
// durations) and wire messages. Each pair lives side by side so a new field
// is added to both directions at once.
import type { ConnView, ReloadResult, StatsView, StatusView } from './backend.js';
import type { WireConnection, WireReloadRulesReply, WireStatsReply, WireStatusReply } from './proto.js';

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
  return {
    ...s,
    interfaces: s.interfaces.map((i) => ({ ...i })),
    uptimeMs: String(s.uptimeMs),
    connections: String(s.connections),
    tableCapacity: String(s.tableCapacity),
  };
}

export function statusFromWire(w: WireStatusReply): StatusView {
  return {
    ...w,
    interfaces: w.interfaces.map((i) => ({ ...i })),
    uptimeMs: Number(w.uptimeMs),
    connections: Number(w.connections),
    tableCapacity: Number(w.tableCapacity),
  };
}

export function statsToWire(s: StatsView): WireStatsReply {
  return { datapath: mapCounters(s.datapath, String), controller: mapCounters(s.controller, String) };
}

export function statsFromWire(w: WireStatsReply): StatsView {
  return { datapath: mapCounters(w.datapath, BigInt), controller: mapCounters(w.controller, BigInt) };
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
