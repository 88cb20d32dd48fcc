// Frames of the peer sync stream (proto/sync.proto) to bytes and back.
// grpc-js is handed ready-made bytes (identity serializers) instead of objects
// so that each payload is encoded once: a payload broadcast to every peer, or
// resent after a reconnect, reuses its bytes; a frame is the concatenation of
// its header fields and the payloads' bytes. Entries go through entry-proto.ts,
// straight from and into packed struct bytes (flow-records.ts). Receiving is
// the mirror image: frames and payloads of flow records are read in place by
// ProtoReader, the rarer payload kinds by protobufjs.
import protobuf from 'protobufjs';
import { findInstallFile } from '../install-files.js';
import {
  expectationFromProto,
  expectationToProto,
  keyFromProto,
  keyToProto,
  readKey,
  readRecord,
  writeKey,
  writeRecord,
  type ProtoExpectation,
  type ProtoFlowKey,
} from './entry-proto.js';
import { FlowKeys } from './flow-keys.js';
import { FlowRecords } from './flow-records.js';
import { ProtoReader } from './proto-reader.js';
import { ProtoWriter } from './proto-writer.js';
import type { NodeState, StateClass, SyncPayload } from './types.js';

const root = protobuf.loadSync(findInstallFile('proto/sync.proto'));
const FrameType = root.lookupType('syncwall.sync.v1.Frame');
const PayloadType = root.lookupType('syncwall.sync.v1.Payload');
const HelloType = root.lookupType('syncwall.sync.v1.Hello');
const payloadsField = FrameType.fields['payloads'];
if (!payloadsField) throw new Error('proto/sync.proto: Frame has no payloads field');
const PAYLOADS_FIELD = payloadsField.id;
/** Tag of Frame.payloads (length-delimited): an embedded message is written exactly like bytes. */
const PAYLOADS_TAG = (PAYLOADS_FIELD << 3) | 2;

/** The gRPC method path of PeerSync.Stream, from the proto rather than a string literal. */
export const STREAM_METHOD = `/${root.lookupService('syncwall.sync.v1.PeerSync').fullName.replace(/^\./, '')}/Stream`;

const NODE_STATES: readonly NodeState[] = ['joining', 'active', 'draining', 'failed'];
const CLASSES: readonly StateClass[] = ['node', 'common'];

function stateToProto(s: NodeState): number {
  return NODE_STATES.indexOf(s) + 1;
}

/** Unset or unknown (newer) states read as 'joining': not yet a member, the safe reading. */
function stateFromProto(v: number | undefined): NodeState {
  return NODE_STATES[(v ?? 0) - 1] ?? 'joining';
}

export interface Hello {
  clusterId: string;
  nodeId: number;
  incarnation: string;
  state: NodeState;
  /** The receiver incarnation the frame's ack refers to. */
  ackedIncarnation: string;
}

export interface OutFrame {
  ack: number;
  firstSeq: number;
  /** Payloads encoded by encodePayload; payloads[i] has seq firstSeq + i. */
  payloads: readonly Uint8Array[];
  hello?: Hello;
  heartbeat?: NodeState;
}

/** A decoded frame; payloads stay encoded until decodePayload (which may reject one). */
export interface InFrame {
  ack: number;
  firstSeq: number;
  /** Views into the received frame. */
  payloads: Uint8Array[];
  hello: Hello | null;
  heartbeat: NodeState | null;
}

interface ProtoRequest {
  requestId?: number;
  flows?: ProtoFlowKey[];
  buckets?: number[];
  all?: boolean;
  common?: boolean;
}

/** The payload kinds protobufjs decodes (entries, bulk and removes are read in place). */
interface ProtoPayload {
  request?: ProtoRequest | null;
  handover?: { buckets?: number[] } | null;
  expectations?: { add?: ProtoExpectation[]; remove?: ProtoExpectation[] } | null;
}

interface ProtoHello {
  clusterId?: string;
  nodeId?: number;
  incarnation?: string;
  state?: number;
  ackedIncarnation?: string;
}

/** Payload kinds that carry flow records or removed keys are written in place (see encodePayload). */
function payloadToProto(p: Exclude<SyncPayload, { kind: 'entries' | 'bulk' | 'removes' }>): ProtoPayload {
  switch (p.kind) {
    case 'request':
      return {
        request: {
          requestId: p.requestId,
          flows: p.flows?.map(keyToProto) ?? [],
          buckets: p.buckets ?? [],
          all: p.all ?? false,
          common: p.common ?? false,
        },
      };
    case 'handover':
      return { handover: { buckets: p.buckets } };
    case 'expectations':
      return { expectations: { add: p.add.map(expectationToProto), remove: p.remove.map(expectationToProto) } };
  }
}

export class UnknownPayloadError extends Error {
  override name = 'UnknownPayloadError';
}

// Field numbers of proto/sync.proto used by the direct reader.
const PAYLOAD_ENTRIES = 1;
const PAYLOAD_REMOVES = 2;
const PAYLOAD_BULK = 4;
const RECORDS_FIELD = 2;
/** An IPv4 record with a TCP window each way; larger ones make the records buffer grow. */
const TYPICAL_RECORD_BYTES = 80;
/** An IPv4 key. */
const TYPICAL_KEY_BYTES = 24;

/**
 * A payload's bytes as a SyncPayload. Throws EntryProtoError (bad entry),
 * UnknownPayloadError (a payload kind of a newer version) or a decoding
 * error for broken bytes.
 */
export function decodePayload(bytes: Uint8Array): SyncPayload {
  const rd = new ProtoReader(bytes);
  // Payload is a oneof: find its body; flow records are read in place.
  while (rd.next()) {
    if (rd.field === PAYLOAD_ENTRIES || rd.field === PAYLOAD_BULK) return readPayloadOfRecords(rd, rd.field);
    if (rd.field === PAYLOAD_REMOVES) return readRemoves(rd);
    rd.skip();
  }
  return payloadFromProto(PayloadType.decode(bytes) as unknown as ProtoPayload);
}

/** Entries {cls = 1, entries = 2} or Bulk {request_id = 1, entries = 2, last = 3}, the reader on the body field. */
function readPayloadOfRecords(rd: ProtoReader, body: number): SyncPayload {
  const end = rd.message();
  // sized for the common record (~90 bytes): one allocation for a typical message
  const entries = new FlowRecords(Math.ceil((end - rd.position) / TYPICAL_RECORD_BYTES));
  let first = 0;
  let last = false;
  while (rd.next(end)) {
    if (rd.field === RECORDS_FIELD) readRecord(rd, entries);
    else if (rd.field === 1) first = rd.uint32();
    else if (rd.field === 3 && body === PAYLOAD_BULK) last = rd.uint32() !== 0;
    else rd.skip();
  }
  if (body === PAYLOAD_ENTRIES) return { kind: 'entries', cls: CLASSES[first] ?? 'node', entries };
  return { kind: 'bulk', requestId: first, entries, last };
}

/** Removes {keys = 1}, the reader on the body field. */
function readRemoves(rd: ProtoReader): SyncPayload {
  const end = rd.message();
  const keys = new FlowKeys(Math.ceil((end - rd.position) / TYPICAL_KEY_BYTES));
  while (rd.next(end)) {
    if (rd.field === 1) readKey(rd, keys);
    else rd.skip();
  }
  return { kind: 'removes', keys };
}

function payloadFromProto(m: ProtoPayload): SyncPayload {
  if (m.request) {
    const r = m.request;
    const out: SyncPayload = { kind: 'request', requestId: r.requestId ?? 0 };
    if (r.flows?.length) out.flows = r.flows.map(keyFromProto);
    if (r.buckets?.length) out.buckets = [...r.buckets];
    if (r.all) out.all = true;
    if (r.common) out.common = true;
    return out;
  }
  if (m.handover) return { kind: 'handover', buckets: [...(m.handover.buckets ?? [])] };
  if (m.expectations) {
    const x = m.expectations;
    return { kind: 'expectations', add: (x.add ?? []).map(expectationFromProto), remove: (x.remove ?? []).map(expectationFromProto) };
  }
  throw new UnknownPayloadError('payload of a kind this version does not know');
}

/** Reused by every encodePayload call (synchronous, so never shared by two). */
const writer = new ProtoWriter();

/**
 * Payloads of flow records and removed keys, the bulk of the traffic, go
 * through ProtoWriter (field numbers of proto/sync.proto: Payload.entries = 1
 * {cls = 1, entries = 2}, Payload.removes = 2 {keys = 1}, Payload.bulk = 4
 * {request_id = 1, entries = 2, last = 3}); the rarer kinds through
 * protobufjs.
 */
export function encodePayload(p: SyncPayload): Uint8Array {
  if (p.kind === 'entries') {
    writer.reset();
    const at = writer.begin(1);
    writer.uint32(1, CLASSES.indexOf(p.cls));
    writeRecords(p.entries, 2);
    writer.end(at);
    return writer.finish();
  }
  if (p.kind === 'bulk') {
    writer.reset();
    const at = writer.begin(4);
    writer.uint32(1, p.requestId);
    writeRecords(p.entries, 2);
    writer.uint32(3, p.last ? 1 : 0);
    writer.end(at);
    return writer.finish();
  }
  if (p.kind === 'removes') {
    writer.reset();
    const at = writer.begin(PAYLOAD_REMOVES);
    for (let i = 0; i < p.keys.length; i++) writeKey(writer, 1, p.keys, i);
    writer.end(at);
    return writer.finish();
  }
  return PayloadType.encode(payloadToProto(p)).finish();
}

function writeRecords(records: FlowRecords, field: number): void {
  for (let i = 0; i < records.length; i++) writeRecord(writer, field, records, i);
}

/** How many flows a payload carries (entries, bulk records or removed keys), for counters. */
export function payloadFlowCount(p: SyncPayload): number {
  switch (p.kind) {
    case 'entries':
    case 'bulk':
      return p.entries.length;
    case 'removes':
      return p.keys.length;
    default:
      return 0;
  }
}

export function encodeFrame(f: OutFrame): Buffer {
  const w = FrameType.encode({
    ack: f.ack,
    firstSeq: f.payloads.length > 0 ? f.firstSeq : 0,
    hello: f.hello && { ...f.hello, state: stateToProto(f.hello.state) },
    heartbeat: f.heartbeat && { state: stateToProto(f.heartbeat) },
  });
  for (const p of f.payloads) w.uint32(PAYLOADS_TAG).bytes(p);
  const out = w.finish();
  return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** Throws ProtoReadError (or protobufjs's error, in a Hello) on bytes that are not a Frame. */
export function decodeFrame(buf: Uint8Array): InFrame {
  const rd = new ProtoReader(buf);
  const frame: InFrame = { ack: 0, firstSeq: 0, payloads: [], hello: null, heartbeat: null };
  while (rd.next()) {
    switch (rd.field) {
      case 1: frame.ack = rd.uint53(); break;
      case 2: frame.firstSeq = rd.uint53(); break;
      case PAYLOADS_FIELD: frame.payloads.push(rd.bytes()); break;
      case 4: frame.hello = helloFromProto(HelloType.decode(rd.bytes()) as unknown as ProtoHello); break;
      case 5: frame.heartbeat = readHeartbeat(rd); break;
      default: rd.skip();
    }
  }
  return frame;
}

function helloFromProto(h: ProtoHello): Hello {
  return {
    clusterId: h.clusterId ?? '',
    nodeId: h.nodeId ?? 0,
    incarnation: h.incarnation ?? '',
    state: stateFromProto(h.state),
    ackedIncarnation: h.ackedIncarnation ?? '',
  };
}

/** Heartbeat {state = 1}. */
function readHeartbeat(rd: ProtoReader): NodeState {
  const end = rd.message();
  let state = 0;
  while (rd.next(end)) {
    if (rd.field === 1) state = rd.uint32();
    else rd.skip();
  }
  return stateFromProto(state);
}
