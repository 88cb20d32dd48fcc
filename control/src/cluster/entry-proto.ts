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
import type { FlowKeys } from './flow-keys.js';
import type { FlowRecords } from './flow-records.js';
import { getVarint, ProtoReadError, skipField, varintHi, varintLo, WIRE_LENGTH, WIRE_VARINT, type ProtoReader } from './proto-reader.js';
import { putVarint, type ProtoWriter } from './proto-writer.js';
import type { ExpectationRecord } from './types.js';

const { u16, u32, be16, putU16, putU32, putBe16 } = bytesLE;
const { key: K, window: W, entry: E, windowSize: WINDOW_SIZE } = structFields;
/** Address bytes a struct flow_key holds (IPv6). */
const ADDR_MAX = 16;
const TWO_32 = 0x1_0000_0000;

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

// How FlowRecord and its embedded messages map onto struct bytes, one row
// per protobuf field: [field number, kind, offset in the struct]. The
// encoder walks these tables in one loop per message instead of a call per
// field, and the decoder likewise: the sync runs much of a burst before V8
// has optimized it, where every call costs.
const U8 = 1;
const U16 = 2;
const U32 = 3;
const BE16 = 4;
const U64 = 5;
/** A u64 of "ns ago" (flow-records.ts) as whole milliseconds. */
const MS = 6;
/** The key's address family: a u8 the reader checks (with the address lengths) once the key is read. */
const FAMILY = 7;
/** Address A or B of the key's family: 4 or 16 bytes. */
const ADDR_A = 8;
const ADDR_B = 9;
/** The embedded FlowKey, from the keys buffer. */
const KEY = 10;
/** An embedded TcpWindow. */
const WINDOW = 11;

const fieldMap = (rows: readonly (readonly [field: number, kind: number, offset: number])[]): Int32Array => Int32Array.from(rows.flat());

const KEY_FIELDS = fieldMap([
  [1, FAMILY, K.family], [2, U8, K.proto], [3, ADDR_A, K.addrA], [4, ADDR_B, K.addrB], [5, BE16, K.portA], [6, BE16, K.portB],
]);
const WINDOW_FIELDS = fieldMap([
  [1, U32, W.end], [2, U32, W.maxEnd], [3, U32, W.maxWin], [4, U32, W.maxAck], [5, U8, W.scale], [6, U8, W.flags],
]);
const RECORD_FIELDS = fieldMap([
  [1, KEY, 0], [2, U8, E.state], [3, U8, E.flags], [4, U8, E.helper], [5, U8, E.lastDir], [6, U16, E.ownerNode],
  [7, U32, E.ruleId], [8, U32, E.version], [9, WINDOW, E.win], [10, WINDOW, E.win + WINDOW_SIZE],
  [11, U64, E.packets], [12, U64, E.packets + 8], [13, U64, E.bytes], [14, U64, E.bytes + 8],
  [15, MS, E.createdNs], [16, MS, E.lastSeenNs],
]);

/** Most bytes a message of these fields takes: a 2-byte tag and a 10-byte varint, or a length and 16 address bytes, or an embedded message. */
function maxMessageBytes(fields: Int32Array): number {
  let n = 0;
  for (let f = 0; f < fields.length; f += 3) {
    const kind = fields[f + 1];
    n += 3 + (kind === KEY ? KEY_MAX_BYTES : kind === WINDOW ? WINDOW_MAX_BYTES : kind === ADDR_A || kind === ADDR_B ? ADDR_MAX : 10);
  }
  return n;
}
const KEY_MAX_BYTES = maxMessageBytes(KEY_FIELDS);
const WINDOW_MAX_BYTES = maxMessageBytes(WINDOW_FIELDS);
// embedded keys and windows always fit a one-byte length, which the encoder relies on
if (KEY_MAX_BYTES > 127 || WINDOW_MAX_BYTES > 127) throw new Error('FlowKey or TcpWindow may outgrow a one-byte length');
/** A record with its own tag and length. */
const RECORD_MAX_BYTES = maxMessageBytes(RECORD_FIELDS) + 5;

/**
 * Writes record i of `records` as an embedded FlowRecord message of
 * proto/sync.proto, field by field from the struct bytes (the replication
 * hot path: no object, no BigInt). Zero scalars are omitted, as proto3
 * allows.
 */
export function writeRecord(w: ProtoWriter, field: number, records: FlowRecords, i: number): void {
  const out = w.room(RECORD_MAX_BYTES);
  let p = w.position;
  p = putVarint(out, p, (field << 3) | 2, 0);
  const lengthAt = p++;
  p = writeFields(RECORD_FIELDS, records.values, i * FLOW_ENTRY_SIZE, out, p, records.keys, i * FLOW_KEY_SIZE);
  const len = p - lengthAt - 1;
  if (len > 127) {
    // records stay below 2^14 bytes: a two-byte length
    out.copyWithin(lengthAt + 2, lengthAt + 1, p);
    out[lengthAt + 1] = len >>> 7;
    out[lengthAt] = (len & 127) | 128;
    p++;
  } else out[lengthAt] = len;
  w.advance(p);
}

/** Writes key i of `keys` as an embedded FlowKey message (field `field`). */
export function writeKey(w: ProtoWriter, field: number, keys: FlowKeys, i: number): void {
  const out = w.room(KEY_MAX_BYTES + 3);
  const off = i * FLOW_KEY_SIZE;
  w.advance(writeEmbedded(KEY_FIELDS, keys.keys, off, out, putVarint(out, w.position, (field << 3) | 2, 0), keys.keys, off));
}

/**
 * Writes the fields of `fields` from the struct at src[base..] to out[p..];
 * returns the position after them. Keys come from keys[kOff..].
 */
function writeFields(fields: Int32Array, src: Uint8Array, base: number, out: Uint8Array, p: number, keys: Uint8Array, kOff: number): number {
  for (let f = 0; f < fields.length; f += 3) {
    const field = fields[f]!;
    const kind = fields[f + 1]!;
    const at = base + fields[f + 2]!;
    let lo = 0;
    let hi = 0;
    switch (kind) {
      case U8:
      case FAMILY: lo = src[at]!; break;
      case U16: lo = u16(src, at); break;
      case BE16: lo = be16(src, at); break;
      case U32: lo = u32(src, at); break;
      case U64: lo = u32(src, at); hi = u32(src, at + 4); break;
      case MS: {
        const ms = msOfNs(src, at);
        lo = ms % TWO_32;
        hi = Math.floor(ms / TWO_32);
        break;
      }
      case ADDR_A:
      case ADDR_B: {
        const len = src[base + K.family] === SwFamily.SW_FAMILY_V4 ? 4 : 16;
        p = putVarint(out, p, (field << 3) | 2, 0);
        out[p++] = len;
        for (let i = 0; i < len; i++) out[p++] = src[at + i]!;
        continue;
      }
      case KEY:
        p = writeEmbedded(KEY_FIELDS, keys, kOff, out, putVarint(out, p, (field << 3) | 2, 0), keys, kOff);
        continue;
      case WINDOW:
        p = writeEmbedded(WINDOW_FIELDS, src, at, out, putVarint(out, p, (field << 3) | 2, 0), keys, kOff);
        continue;
    }
    if (lo === 0 && hi === 0) continue;
    p = putVarint(out, putVarint(out, p, field << 3, 0), lo, hi);
  }
  return p;
}

/** An embedded message's one-byte length (see KEY_MAX_BYTES) and fields at out[p..]. */
function writeEmbedded(fields: Int32Array, src: Uint8Array, base: number, out: Uint8Array, p: number, keys: Uint8Array, kOff: number): number {
  const end = writeFields(fields, src, base, out, p + 1, keys, kOff);
  out[p] = end - p - 1;
  return end;
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
  const kOff = i * FLOW_KEY_SIZE;
  readFields(RECORD_FIELDS, rd.buffer, rd.position, end, into.values, i * FLOW_ENTRY_SIZE, into.keys, kOff);
  rd.seek(end);
  // a key that was read passed checkKey, so its family is 4 or 6
  if (into.keys[kOff + K.family] === 0) throw new EntryProtoError('flow key missing');
  into.commit();
}

/**
 * Reads the embedded FlowKey message the reader stands on into a new key of
 * `into`. Throws EntryProtoError for a key no data plane could hold,
 * ProtoReadError for broken bytes; either way `into` gains no key.
 */
export function readKey(rd: ProtoReader, into: FlowKeys): void {
  const end = rd.message();
  const off = into.reserve() * FLOW_KEY_SIZE;
  readFields(KEY_FIELDS, rd.buffer, rd.position, end, into.keys, off, into.keys, off);
  rd.seek(end);
  into.commit();
}

/** Row of each field number in a field map (-1: unknown), for the reader. */
function rowsByField(fields: Int32Array): Int32Array {
  const rows = new Int32Array(MAX_FIELD + 1).fill(-1);
  for (let f = 0; f < fields.length; f += 3) rows[fields[f]!] = f;
  return rows;
}
const MAX_FIELD = 16;
const KEY_ROWS = rowsByField(KEY_FIELDS);
const WINDOW_ROWS = rowsByField(WINDOW_FIELDS);
const RECORD_ROWS = rowsByField(RECORD_FIELDS);

/**
 * Reads the fields of the message in buf[p, end) into the struct at
 * dst[base..] (an embedded key into keys[kOff..]), by the field map
 * `fields`; skips fields it does not know. Throws ProtoReadError for broken
 * bytes, EntryProtoError for a key no data plane could hold.
 */
function readFields(fields: Int32Array, buf: Uint8Array, p: number, end: number, dst: Uint8Array, base: number, keys: Uint8Array, kOff: number): void {
  const rows = fields === KEY_FIELDS ? KEY_ROWS : fields === WINDOW_FIELDS ? WINDOW_ROWS : RECORD_ROWS;
  let family = 0;
  let lenA = 0;
  let lenB = 0;
  while (p < end) {
    // one-byte varints (every tag below field 16, most small values) are read here, the rest by getVarint
    let tag = buf[p]!;
    if (tag < 128) p++;
    else {
      p = getVarint(buf, p, end);
      tag = varintLo;
    }
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new ProtoReadError(`field number 0 at byte ${p}`);
    const row = field <= MAX_FIELD ? rows[field]! : -1;
    if (row < 0) {
      p = skipField(buf, p, end, field, wireType);
      continue;
    }
    const kind = fields[row + 1]!;
    const at = base + fields[row + 2]!;
    const delimited = kind === KEY || kind === WINDOW || kind === ADDR_A || kind === ADDR_B;
    if (wireType !== (delimited ? WIRE_LENGTH : WIRE_VARINT)) throw new ProtoReadError(`field ${field}: wire type ${wireType}, expected ${delimited ? WIRE_LENGTH : WIRE_VARINT}`);
    let lo = p < end ? buf[p]! : 128;
    let hi = 0;
    if (lo < 128) p++;
    else {
      p = getVarint(buf, p, end);
      lo = varintLo;
      hi = varintHi;
    }
    if (delimited) {
      const next = p + lo;
      if (hi !== 0 || next > end) throw new ProtoReadError(`field ${field}: ${lo} bytes at ${p} run past the end (${end})`);
      if (kind === KEY) {
        // a second key replaces the first (a shorter address must not keep its bytes)
        if (keys[kOff + K.family] !== 0) keys.fill(0, kOff, kOff + FLOW_KEY_SIZE);
        readFields(KEY_FIELDS, buf, p, next, keys, kOff, keys, kOff);
      } else if (kind === WINDOW) {
        // a repeated window merges into the first, as protobuf has it
        readFields(WINDOW_FIELDS, buf, p, next, dst, at, keys, kOff);
      } else {
        if (lo <= ADDR_MAX) for (let j = 0; j < lo; j++) dst[at + j] = buf[p + j]!;
        if (kind === ADDR_A) lenA = lo;
        else lenB = lo;
      }
      p = next;
      continue;
    }
    switch (kind) {
      case U8: dst[at] = lo; break;
      case FAMILY: dst[at] = family = lo; break;
      case U16: putU16(dst, at, lo); break;
      case BE16: putBe16(dst, at, lo); break;
      case U32: putU32(dst, at, lo); break;
      case U64: putU32(dst, at, lo); putU32(dst, at + 4, hi); break;
      case MS: putNsOfMs(dst, at, hi * TWO_32 + lo); break;
    }
  }
  if (fields === KEY_FIELDS) checkKey(family, lenA, lenB);
}

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
