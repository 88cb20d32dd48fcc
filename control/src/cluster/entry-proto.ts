// The one place a FlowRecord (and a helper's ExpectationRecord) becomes a
// protobuf message (proto/sync.proto FlowRecord, Expectation) and back:
// writeRecord and readRecord on the replication hot path (straight to and
// from the wire), the *FromProto/*ToProto pairs for the rarer messages
// protobufjs handles. Replication never ships struct bytes: the message
// survives field additions on either side, so nodes of different versions
// sync during an upgrade. Shapes follow protobufjs: camelCase fields, uint64 as
// a number (exact below 2^53) or a Long-like {low, high} pair, bytes as
// Uint8Array. Decoding accepts what protobufjs hands over: absent scalars read
// as their default, absent sub-messages as null/undefined.
import type { FlowKey, TcpWindow } from '../bpf/codec.js';
import { SwFamily } from '../gen/layout.js';
import type { ProtoReader } from './proto-reader.js';
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

/**
 * Reads the embedded FlowRecord message the reader stands on (field of wire
 * type 2), the inverse of writeRecord. Fields an older sender did not know
 * read as 0; fields a newer sender added are skipped. Throws EntryProtoError
 * for a key no data plane could hold, ProtoReadError for broken bytes.
 */
export function readRecord(rd: ProtoReader): FlowRecord {
  const end = rd.message();
  let key: FlowKey | null = null;
  let state = 0, flags = 0, helper = 0, lastDir = 0, ownerNode = 0, ruleId = 0, version = 0, ageMs = 0, idleMs = 0;
  let winOrig = EMPTY_WINDOW, winReply = EMPTY_WINDOW;
  let packetsOrig = 0n, packetsReply = 0n, bytesOrig = 0n, bytesReply = 0n;
  while (rd.next(end)) {
    switch (rd.field) {
      case 1: key = readKey(rd); break;
      case 2: state = rd.uint32(); break;
      case 3: flags = rd.uint32(); break;
      case 4: helper = rd.uint32(); break;
      case 5: lastDir = rd.uint32(); break;
      case 6: ownerNode = rd.uint32(); break;
      case 7: ruleId = rd.uint32(); break;
      case 8: version = rd.uint32(); break;
      case 9: winOrig = readWindow(rd); break;
      case 10: winReply = readWindow(rd); break;
      case 11: packetsOrig = rd.uint64(); break;
      case 12: packetsReply = rd.uint64(); break;
      case 13: bytesOrig = rd.uint64(); break;
      case 14: bytesReply = rd.uint64(); break;
      case 15: ageMs = rd.uint53(); break;
      case 16: idleMs = rd.uint53(); break;
      default: rd.skip();
    }
  }
  if (!key) throw new EntryProtoError('flow key missing');
  return {
    key, state, flags, helper, lastDir, ownerNode, ruleId, version,
    // a window the sender left out (all zero) is a fresh copy: records are mutable
    win: [winOrig === EMPTY_WINDOW ? { ...EMPTY_WINDOW } : winOrig, winReply === EMPTY_WINDOW ? { ...EMPTY_WINDOW } : winReply],
    packets: [packetsOrig, packetsReply],
    bytes: [bytesOrig, bytesReply],
    ageMs, idleMs,
  };
}

function readKey(rd: ProtoReader): FlowKey {
  const end = rd.message();
  let family = 0, proto = 0, portA = 0, portB = 0;
  let addrA: Uint8Array | undefined;
  let addrB: Uint8Array | undefined;
  while (rd.next(end)) {
    switch (rd.field) {
      case 1: family = rd.uint32(); break;
      case 2: proto = rd.uint32(); break;
      case 3: addrA = rd.bytes(); break;
      case 4: addrB = rd.bytes(); break;
      case 5: portA = rd.uint32(); break;
      case 6: portB = rd.uint32(); break;
      default: rd.skip();
    }
  }
  return keyFromProto({ family, proto, addrA, addrB, portA, portB });
}

function readWindow(rd: ProtoReader): TcpWindow {
  const end = rd.message();
  let wEnd = 0, maxEnd = 0, maxWin = 0, maxAck = 0, scale = 0, flags = 0;
  while (rd.next(end)) {
    switch (rd.field) {
      case 1: wEnd = rd.uint32(); break;
      case 2: maxEnd = rd.uint32(); break;
      case 3: maxWin = rd.uint32(); break;
      case 4: maxAck = rd.uint32(); break;
      case 5: scale = rd.uint32(); break;
      case 6: flags = rd.uint32(); break;
      default: rd.skip();
    }
  }
  return { end: wEnd, maxEnd, maxWin, maxAck, scale, flags };
}

const EMPTY_WINDOW: Readonly<TcpWindow> = { end: 0, maxEnd: 0, maxWin: 0, maxAck: 0, scale: 0, flags: 0 };

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
