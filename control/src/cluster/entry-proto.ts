// The one place a connection entry (and a helper's ExpectationRecord)
// becomes a protobuf message (proto/sync.proto FlowRecord, Expectation) and
// back: writeRecord and readRecord on the replication hot path, straight
// between struct bytes (flow-records.ts) and the wire; the *FromProto/*ToProto
// pairs for the rarer messages protobufjs handles. Replication never ships
// struct bytes: the message survives field additions on either side, so
// nodes of different versions sync during an upgrade. Shapes follow
// protobufjs: camelCase fields, uint64 as a number (exact below 2^53) or a
// Long-like {low, high} pair, bytes as Uint8Array. Decoding accepts what
// protobufjs hands over: absent scalars read as their default, absent
// sub-messages as null/undefined.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, bytesLE, structFields, type FlowKey } from '../bpf/codec.js';
import { SwFamily } from '../gen/layout.js';
import type { FlowRecords } from './flow-records.js';
import type { ProtoReader } from './proto-reader.js';
import type { ProtoWriter } from './proto-writer.js';
import type { ExpectationRecord } from './types.js';

const { u16, u32, be16, putU16, putU32, putBe16 } = bytesLE;
const { key: K, window: W, entry: E, windowSize: WINDOW_SIZE } = structFields;
/** Address bytes a struct flow_key holds (IPv6). */
const ADDR_MAX = 16;

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

/** Throws EntryProtoError unless a data plane can hold the key (known family, address lengths to match). */
function checkKey(family: number, lenA: number, lenB: number): void {
  const len = ADDR_LENGTH[family];
  if (len === undefined) throw new EntryProtoError(`flow key: unknown address family ${family}`);
  if (lenA !== len || lenB !== len) throw new EntryProtoError(`flow key: family ${family} needs ${len}-byte addresses, got ${lenA} and ${lenB}`);
}

/** Throws EntryProtoError for a key no data plane could hold (unknown family, wrong address length). */
export function keyFromProto(m: ProtoFlowKey | null | undefined): FlowKey {
  if (!m) throw new EntryProtoError('flow key missing');
  const family = m.family ?? 0;
  const addrA = m.addrA ?? new Uint8Array(0);
  const addrB = m.addrB ?? new Uint8Array(0);
  checkKey(family, addrA.length, addrB.length);
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

/**
 * Writes record i of `records` as an embedded FlowRecord message of
 * proto/sync.proto, field by field from the struct bytes (the replication
 * hot path: no object, no BigInt). Field numbers are those of
 * proto/sync.proto; zero scalars are omitted, as proto3 allows.
 */
export function writeRecord(w: ProtoWriter, field: number, records: FlowRecords, i: number): void {
  const v = records.values;
  const o = i * FLOW_ENTRY_SIZE;
  const at = w.begin(field);
  writeKey(w, 1, records.keys, i * FLOW_KEY_SIZE);
  w.uint32(2, v[o + E.state]!);
  w.uint32(3, v[o + E.flags]!);
  w.uint32(4, v[o + E.helper]!);
  w.uint32(5, v[o + E.lastDir]!);
  w.uint32(6, u16(v, o + E.ownerNode));
  w.uint32(7, u32(v, o + E.ruleId));
  w.uint32(8, u32(v, o + E.version));
  writeWindow(w, 9, v, o + E.win);
  writeWindow(w, 10, v, o + E.win + WINDOW_SIZE);
  w.uint64(11, u32(v, o + E.packets), u32(v, o + E.packets + 4));
  w.uint64(12, u32(v, o + E.packets + 8), u32(v, o + E.packets + 12));
  w.uint64(13, u32(v, o + E.bytes), u32(v, o + E.bytes + 4));
  w.uint64(14, u32(v, o + E.bytes + 8), u32(v, o + E.bytes + 12));
  // in transit created/last_seen hold "ns ago" (flow-records.ts); the wire has whole ms
  w.uint53(15, msOfNs(v, o + E.createdNs));
  w.uint53(16, msOfNs(v, o + E.lastSeenNs));
  w.end(at);
}

/** Writes the struct flow_key at keys[off] as an embedded FlowKey message. */
export function writeKey(w: ProtoWriter, field: number, keys: Uint8Array, off: number): void {
  const family = keys[off + K.family]!;
  const len = family === SwFamily.SW_FAMILY_V4 ? 4 : 16;
  const at = w.begin(field);
  w.uint32(1, family);
  w.uint32(2, keys[off + K.proto]!);
  w.bytes(3, keys, off + K.addrA, len);
  w.bytes(4, keys, off + K.addrB, len);
  w.uint32(5, be16(keys, off + K.portA));
  w.uint32(6, be16(keys, off + K.portB));
  w.end(at);
}

function writeWindow(w: ProtoWriter, field: number, v: Uint8Array, o: number): void {
  const at = w.begin(field);
  w.uint32(1, u32(v, o + W.end));
  w.uint32(2, u32(v, o + W.maxEnd));
  w.uint32(3, u32(v, o + W.maxWin));
  w.uint32(4, u32(v, o + W.maxAck));
  w.uint32(5, v[o + W.scale]!);
  w.uint32(6, v[o + W.flags]!);
  w.end(at);
}

/**
 * Reads the embedded FlowRecord message the reader stands on (field of wire
 * type 2) into a new record of `into`, the inverse of writeRecord. Fields
 * an older sender did not know read as 0; fields a newer sender added are
 * skipped. Throws EntryProtoError for a key no data plane could hold,
 * ProtoReadError for broken bytes; either way `into` gains no record.
 */
export function readRecord(rd: ProtoReader, into: FlowRecords): void {
  const end = rd.message();
  const i = into.reserve();
  const v = into.values;
  const o = i * FLOW_ENTRY_SIZE;
  let key = false;
  while (rd.next(end)) {
    switch (rd.field) {
      case 1: readKey(rd, into.keys, i * FLOW_KEY_SIZE); key = true; break;
      case 2: v[o + E.state] = rd.uint32(); break;
      case 3: v[o + E.flags] = rd.uint32(); break;
      case 4: v[o + E.helper] = rd.uint32(); break;
      case 5: v[o + E.lastDir] = rd.uint32(); break;
      case 6: putU16(v, o + E.ownerNode, rd.uint32()); break;
      case 7: putU32(v, o + E.ruleId, rd.uint32()); break;
      case 8: putU32(v, o + E.version, rd.uint32()); break;
      case 9: readWindow(rd, v, o + E.win); break;
      case 10: readWindow(rd, v, o + E.win + WINDOW_SIZE); break;
      case 11: rd.uint64To(v, o + E.packets); break;
      case 12: rd.uint64To(v, o + E.packets + 8); break;
      case 13: rd.uint64To(v, o + E.bytes); break;
      case 14: rd.uint64To(v, o + E.bytes + 8); break;
      case 15: putNsOfMs(v, o + E.createdNs, rd.uint53()); break;
      case 16: putNsOfMs(v, o + E.lastSeenNs, rd.uint53()); break;
      default: rd.skip();
    }
  }
  if (!key) throw new EntryProtoError('flow key missing');
  into.commit();
}

/**
 * Reads the embedded FlowKey message the reader stands on into the struct
 * flow_key at keys[off] (padding and unused address bytes zeroed). Throws
 * EntryProtoError for a key no data plane could hold.
 */
export function readKey(rd: ProtoReader, keys: Uint8Array, off: number): void {
  const end = rd.message();
  keys.fill(0, off, off + FLOW_KEY_SIZE);
  let family = 0;
  let lenA = 0;
  let lenB = 0;
  while (rd.next(end)) {
    switch (rd.field) {
      case 1: family = rd.uint32(); break;
      case 2: keys[off + K.proto] = rd.uint32(); break;
      case 3: lenA = rd.bytesTo(keys, off + K.addrA, ADDR_MAX); break;
      case 4: lenB = rd.bytesTo(keys, off + K.addrB, ADDR_MAX); break;
      case 5: putBe16(keys, off + K.portA, rd.uint32()); break;
      case 6: putBe16(keys, off + K.portB, rd.uint32()); break;
      default: rd.skip();
    }
  }
  checkKey(family, lenA, lenB);
  keys[off + K.family] = family;
}

function readWindow(rd: ProtoReader, v: Uint8Array, o: number): void {
  const end = rd.message();
  while (rd.next(end)) {
    switch (rd.field) {
      case 1: putU32(v, o + W.end, rd.uint32()); break;
      case 2: putU32(v, o + W.maxEnd, rd.uint32()); break;
      case 3: putU32(v, o + W.maxWin, rd.uint32()); break;
      case 4: putU32(v, o + W.maxAck, rd.uint32()); break;
      case 5: v[o + W.scale] = rd.uint32(); break;
      case 6: v[o + W.flags] = rd.uint32(); break;
      default: rd.skip();
    }
  }
}

const TWO_32 = 0x1_0000_0000;
const NS_PER_MS = 1_000_000;

/**
 * The u64 of nanoseconds at buf[off] in whole milliseconds (rounded down),
 * exact over the whole range: with 2^32 = 4294·10^6 + 967296, the part left
 * to divide stays below 2^52, where a double's quotient never rounds across
 * an integer.
 */
function msOfNs(buf: Uint8Array, off: number): number {
  const hi = u32(buf, off + 4);
  return hi * 4294 + Math.floor((hi * 967296 + u32(buf, off)) / NS_PER_MS);
}

/** Stores ms milliseconds as a u64 of nanoseconds at buf[off], saturating (a time that far back clamps to 0 later). */
function putNsOfMs(buf: Uint8Array, off: number, ms: number): void {
  const msHi = Math.floor(ms / TWO_32);
  const low = (ms - msHi * TWO_32) * NS_PER_MS;
  const hi = msHi * NS_PER_MS + Math.floor(low / TWO_32);
  const saturated = hi >= TWO_32;
  putU32(buf, off, saturated ? 0xffff_ffff : low % TWO_32);
  putU32(buf, off + 4, saturated ? 0xffff_ffff : hi);
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
