// The one place a FlowRecord (and a helper's ExpectationRecord) becomes a
// protobuf message (proto/sync.proto FlowRecord, Expectation) and back. Replication never ships struct bytes: the message
// survives field additions on either side, so nodes of different versions
// sync during an upgrade. Shapes follow protobufjs: camelCase fields, uint64 as
// a number (exact below 2^53) or a Long-like {low, high} pair, bytes as
// Uint8Array. Decoding accepts what protobufjs hands over: absent scalars read
// as their default, absent sub-messages as null/undefined.
import type { FlowKey, TcpWindow } from '../bpf/codec.js';
import { SwFamily } from '../gen/layout.js';
import type { ProtoWriter } from './proto-writer.js';
import type { ExpectationRecord, FlowRecord } from './types.js';

export class EntryProtoError extends Error {
  override name = 'EntryProtoError';
}

/** A uint64 as protobufjs writes (number or {low, high}) and reads it (number or Long). */
export type ProtoU64 = number | { low: number; high: number; unsigned?: boolean };

export interface ProtoFlowKey {
  family?: number;
  proto?: number;
  addrA?: Uint8Array;
  addrB?: Uint8Array;
  portA?: number;
  portB?: number;
}

export interface ProtoTcpWindow {
  end?: number;
  maxEnd?: number;
  maxWin?: number;
  maxAck?: number;
  scale?: number;
  flags?: number;
}

export interface ProtoFlowRecord {
  key?: ProtoFlowKey | null;
  state?: number;
  flags?: number;
  helper?: number;
  lastDir?: number;
  ownerNode?: number;
  ruleId?: number;
  version?: number;
  winOrig?: ProtoTcpWindow | null;
  winReply?: ProtoTcpWindow | null;
  packetsOrig?: ProtoU64;
  packetsReply?: ProtoU64;
  bytesOrig?: ProtoU64;
  bytesReply?: ProtoU64;
  ageMs?: ProtoU64;
  idleMs?: ProtoU64;
}

const TWO_32 = 0x1_0000_0000n;

export function u64FromProto(v: ProtoU64 | undefined | null): bigint {
  if (v == null) return 0n;
  if (typeof v === 'number') return BigInt(v);
  return BigInt(v.high >>> 0) * TWO_32 + BigInt(v.low >>> 0);
}

/** A uint64 that never nears 2^53 in practice (milliseconds, sequence numbers) as a number. */
export function numberFromProto(v: ProtoU64 | undefined | null): number {
  if (v == null) return 0;
  if (typeof v === 'number') return v;
  return (v.high >>> 0) * 0x1_0000_0000 + (v.low >>> 0);
}

export function keyToProto(k: FlowKey): ProtoFlowKey {
  return { family: k.family, proto: k.proto, addrA: k.addrA, addrB: k.addrB, portA: k.portA, portB: k.portB };
}

const ADDR_LENGTH: Record<number, number> = { [SwFamily.SW_FAMILY_V4]: 4, [SwFamily.SW_FAMILY_V6]: 16 };

/** Throws EntryProtoError for a key no data plane could hold (unknown family, wrong address length). */
export function keyFromProto(m: ProtoFlowKey | null | undefined): FlowKey {
  if (!m) throw new EntryProtoError('flow key missing');
  const family = m.family ?? 0;
  const len = ADDR_LENGTH[family];
  if (len === undefined) throw new EntryProtoError(`flow key: unknown address family ${family}`);
  const addrA = m.addrA ?? new Uint8Array(0);
  const addrB = m.addrB ?? new Uint8Array(0);
  if (addrA.length !== len || addrB.length !== len)
    throw new EntryProtoError(`flow key: family ${family} needs ${len}-byte addresses, got ${addrA.length} and ${addrB.length}`);
  return {
    family,
    proto: m.proto ?? 0,
    // copies: decoded bytes are views into the whole received frame
    addrA: new Uint8Array(addrA),
    addrB: new Uint8Array(addrB),
    portA: m.portA ?? 0,
    portB: m.portB ?? 0,
  };
}

function windowFromProto(m: ProtoTcpWindow | null | undefined): TcpWindow {
  return {
    end: m?.end ?? 0,
    maxEnd: m?.maxEnd ?? 0,
    maxWin: m?.maxWin ?? 0,
    maxAck: m?.maxAck ?? 0,
    scale: m?.scale ?? 0,
    flags: m?.flags ?? 0,
  };
}

/**
 * Writes r as an embedded FlowRecord message of proto/sync.proto: the one
 * place a FlowRecord is encoded, without intermediate objects (the
 * replication hot path).
 * Field numbers are those of proto/sync.proto; zero scalars are omitted, as
 * proto3 allows.
 */
export function writeRecord(w: ProtoWriter, field: number, r: FlowRecord): void {
  const at = w.begin(field);
  writeKey(w, 1, r.key);
  w.uint32(2, r.state);
  w.uint32(3, r.flags);
  w.uint32(4, r.helper);
  w.uint32(5, r.lastDir);
  w.uint32(6, r.ownerNode);
  w.uint32(7, r.ruleId);
  w.uint32(8, r.version);
  writeWindow(w, 9, r.win[0]);
  writeWindow(w, 10, r.win[1]);
  w.uint64(11, r.packets[0]);
  w.uint64(12, r.packets[1]);
  w.uint64(13, r.bytes[0]);
  w.uint64(14, r.bytes[1]);
  w.uint53(15, Math.max(0, Math.round(r.ageMs)));
  w.uint53(16, Math.max(0, Math.round(r.idleMs)));
  w.end(at);
}

function writeKey(w: ProtoWriter, field: number, k: FlowKey): void {
  const at = w.begin(field);
  w.uint32(1, k.family);
  w.uint32(2, k.proto);
  w.bytes(3, k.addrA);
  w.bytes(4, k.addrB);
  w.uint32(5, k.portA);
  w.uint32(6, k.portB);
  w.end(at);
}

function writeWindow(w: ProtoWriter, field: number, t: TcpWindow): void {
  const at = w.begin(field);
  w.uint32(1, t.end);
  w.uint32(2, t.maxEnd);
  w.uint32(3, t.maxWin);
  w.uint32(4, t.maxAck);
  w.uint32(5, t.scale);
  w.uint32(6, t.flags);
  w.end(at);
}

/** Fields an older sender did not know read as 0; fields a newer sender added are ignored. */
export function recordFromProto(m: ProtoFlowRecord): FlowRecord {
  return {
    key: keyFromProto(m.key),
    state: m.state ?? 0,
    flags: m.flags ?? 0,
    helper: m.helper ?? 0,
    lastDir: m.lastDir ?? 0,
    ownerNode: m.ownerNode ?? 0,
    ruleId: m.ruleId ?? 0,
    version: m.version ?? 0,
    win: [windowFromProto(m.winOrig), windowFromProto(m.winReply)],
    packets: [u64FromProto(m.packetsOrig), u64FromProto(m.packetsReply)],
    bytes: [u64FromProto(m.bytesOrig), u64FromProto(m.bytesReply)],
    ageMs: numberFromProto(m.ageMs),
    idleMs: numberFromProto(m.idleMs),
  };
}

export interface ProtoExpectation {
  family?: number;
  proto?: number;
  fromAddr?: Uint8Array;
  fromPort?: number;
  toAddr?: Uint8Array;
  toPort?: number;
  helper?: number;
  control?: ProtoFlowKey | null;
  ttlMs?: ProtoU64;
}

export function expectationToProto(e: ExpectationRecord): ProtoExpectation {
  return {
    family: e.family,
    proto: e.proto,
    fromAddr: e.from,
    fromPort: e.fromPort,
    toAddr: e.to,
    toPort: e.toPort,
    helper: e.helper,
    control: keyToProto(e.control),
    ttlMs: Math.max(0, Math.round(e.ttlMs)),
  };
}

/** Throws EntryProtoError for an expectation no node could match (bad family, address lengths, ports). */
export function expectationFromProto(m: ProtoExpectation): ExpectationRecord {
  const family = m.family ?? 0;
  const len = ADDR_LENGTH[family];
  if (len === undefined) throw new EntryProtoError(`expectation: unknown address family ${family}`);
  const from = m.fromAddr ?? new Uint8Array(0);
  const to = m.toAddr ?? new Uint8Array(0);
  if (from.length !== len || to.length !== len)
    throw new EntryProtoError(`expectation: family ${family} needs ${len}-byte addresses, got ${from.length} and ${to.length}`);
  const fromPort = m.fromPort ?? 0;
  const toPort = m.toPort ?? 0;
  if (fromPort > 65535 || toPort < 1 || toPort > 65535) throw new EntryProtoError(`expectation: ports ${fromPort} -> ${toPort} out of range`);
  return {
    family,
    proto: m.proto ?? 0,
    from: new Uint8Array(from),
    fromPort,
    to: new Uint8Array(to),
    toPort,
    helper: m.helper ?? 0,
    control: keyFromProto(m.control),
    ttlMs: numberFromProto(m.ttlMs),
  };
}
