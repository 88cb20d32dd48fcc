// Table entry ⇄ FlowRecord. A record carries times relative to the sender's
// clock (age, idle), since node clocks differ; the receiver rebuilds
// absolute CLOCK_MONOTONIC times from its own clock. Only entries that are
// actually sent or installed are converted: the table is never mirrored
// into JS objects.
import { FLOW_KEY_SIZE, flowEntry, flowKey } from '../bpf/codec.js';
import { FlowFlag, TcpWindowFlag } from '../gen/layout.js';
import type { FlowRecord } from './types.js';

const NS_PER_MS = 1_000_000n;

/** The entry at values[vOff] of the key at keys[kOff] as a record, times relative to nowNs. */
export function recordFromEntry(keys: Uint8Array, kOff: number, values: Uint8Array, vOff: number, nowNs: bigint): FlowRecord {
  const key = flowKey.read(keys.subarray(kOff, kOff + FLOW_KEY_SIZE), 0);
  const e = flowEntry.decode(values, vOff);
  return {
    key,
    state: e.state,
    flags: e.flags,
    helper: e.helper,
    lastDir: e.lastDir,
    ownerNode: e.ownerNode,
    ruleId: e.ruleId,
    version: e.version,
    win: e.win,
    packets: e.packets,
    bytes: e.bytes,
    ageMs: relativeMs(nowNs, e.createdNs),
    idleMs: relativeMs(nowNs, e.lastSeenNs),
  };
}

/** How long before nowNs a monotonic timestamp lies, in ms (0 for timestamps ahead of it). */
function relativeMs(nowNs: bigint, thenNs: bigint): number {
  return thenNs >= nowNs ? 0 : Number((nowNs - thenNs) / NS_PER_MS);
}

/** last_seen a record stands for on this node's clock (what replica versions are compared by). */
export function replicaLastSeenNs(r: FlowRecord, nowNs: bigint): bigint {
  const ns = nowNs - BigInt(r.idleMs) * NS_PER_MS;
  return ns > 0n ? ns : 0n;
}

/**
 * Writes a record as a replica entry: FLOW_F_REMOTE set, both TCP windows
 * marked untrusted (the data plane re-learns them from the next packet, since
 * window edges are synced at a bounded rate), created and last_seen rebuilt
 * on this node's clock. orig_ifindex is 0: interface numbers are per node.
 */
export function encodeReplica(r: FlowRecord, nowNs: bigint, keys: Uint8Array, kOff: number, values: Uint8Array, vOff: number): void {
  flowKey.write(keys, kOff, r.key);
  const created = nowNs - BigInt(r.ageMs) * NS_PER_MS;
  flowEntry.encode(values, vOff, {
    state: r.state,
    flags: r.flags | FlowFlag.FLOW_F_REMOTE,
    helper: r.helper,
    lastDir: r.lastDir,
    ownerNode: r.ownerNode,
    ruleId: r.ruleId,
    version: r.version,
    win: [untrusted(r.win[0]), untrusted(r.win[1])],
    lastSeenNs: replicaLastSeenNs(r, nowNs),
    packets: r.packets,
    bytes: r.bytes,
    createdNs: created > 0n ? created : 0n,
    origIfindex: 0,
  });
}

function untrusted(w: FlowRecord['win'][number]): FlowRecord['win'][number] {
  return { ...w, flags: w.flags | TcpWindowFlag.TCPW_F_UNTRUSTED };
}
