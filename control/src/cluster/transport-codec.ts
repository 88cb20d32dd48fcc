// Frames of the peer sync stream (proto/sync.proto) to bytes and back.
// grpc-js is handed ready-made bytes (identity serializers) instead of objects
// so that each payload is encoded once: a payload broadcast to every peer, or
// resent after a reconnect, reuses its bytes; a frame is the concatenation of
// its header fields and the payloads' bytes. Entries go through entry-proto.ts.
import protobuf from 'protobufjs';
import { findInstallFile } from '../install-files.js';
import {
  expectationFromProto,
  expectationToProto,
  keyFromProto,
  keyToProto,
  numberFromProto,
  recordFromProto,
  writeRecord,
  type ProtoExpectation,
  type ProtoFlowKey,
  type ProtoFlowRecord,
  type ProtoU64,
} from './entry-proto.js';
import { ProtoWriter } from './proto-writer.js';
import type { FlowRecord, NodeState, StateClass, SyncPayload } from './types.js';

const root = protobuf.loadSync(findInstallFile('proto/sync.proto'));
const FrameType = root.lookupType('syncwall.sync.v1.Frame');
const PayloadType = root.lookupType('syncwall.sync.v1.Payload');
const payloadsField = FrameType.fields['payloads'];
if (!payloadsField) throw new Error('proto/sync.proto: Frame has no payloads field');
/** Tag of Frame.payloads (length-delimited): an embedded message is written exactly like bytes. */
const PAYLOADS_TAG = (payloadsField.id << 3) | 2;

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

/** A decoded frame; payloads stay in protobuf form until payloadFromProto (which may reject one). */
export interface InFrame {
  ack: number;
  firstSeq: number;
  payloads: ProtoPayload[];
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

export interface ProtoPayload {
  entries?: { cls?: number; entries?: ProtoFlowRecord[] } | null;
  removes?: { keys?: ProtoFlowKey[] } | null;
  request?: ProtoRequest | null;
  bulk?: { requestId?: number; entries?: ProtoFlowRecord[]; last?: boolean } | null;
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

interface ProtoFrame {
  ack?: ProtoU64;
  firstSeq?: ProtoU64;
  payloads?: ProtoPayload[];
  hello?: ProtoHello | null;
  heartbeat?: { state?: number } | null;
}

/** Payload kinds that carry flow records are written by writeRecords (see encodePayload). */
function payloadToProto(p: Exclude<SyncPayload, { kind: 'entries' | 'bulk' }>): ProtoPayload {
  switch (p.kind) {
    case 'removes':
      return { removes: { keys: p.keys.map(keyToProto) } };
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

/** Throws EntryProtoError (bad entry) or UnknownPayloadError (a payload kind of a newer version). */
export function payloadFromProto(m: ProtoPayload): SyncPayload {
  if (m.entries) {
    return { kind: 'entries', cls: CLASSES[m.entries.cls ?? 0] ?? 'node', entries: (m.entries.entries ?? []).map(recordFromProto) };
  }
  if (m.removes) return { kind: 'removes', keys: (m.removes.keys ?? []).map(keyFromProto) };
  if (m.request) {
    const r = m.request;
    const out: SyncPayload = { kind: 'request', requestId: r.requestId ?? 0 };
    if (r.flows?.length) out.flows = r.flows.map(keyFromProto);
    if (r.buckets?.length) out.buckets = [...r.buckets];
    if (r.all) out.all = true;
    if (r.common) out.common = true;
    return out;
  }
  if (m.bulk) {
    return { kind: 'bulk', requestId: m.bulk.requestId ?? 0, entries: (m.bulk.entries ?? []).map(recordFromProto), last: m.bulk.last ?? false };
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
 * Payloads of flow records, the bulk of the traffic, go through ProtoWriter
 * (field numbers of proto/sync.proto: Payload.entries = 1 {cls = 1,
 * entries = 2}, Payload.bulk = 4 {request_id = 1, entries = 2, last = 3});
 * the rarer kinds through protobufjs.
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
  return PayloadType.encode(payloadToProto(p)).finish();
}

function writeRecords(records: readonly FlowRecord[], field: number): void {
  for (const r of records) writeRecord(writer, field, r);
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

/** Throws protobufjs's error on bytes that are not a Frame. */
export function decodeFrame(buf: Uint8Array): InFrame {
  const m = FrameType.decode(buf) as unknown as ProtoFrame;
  const h = m.hello;
  return {
    ack: numberFromProto(m.ack),
    firstSeq: numberFromProto(m.firstSeq),
    payloads: m.payloads ?? [],
    hello: h
      ? {
          clusterId: h.clusterId ?? '',
          nodeId: h.nodeId ?? 0,
          incarnation: h.incarnation ?? '',
          state: stateFromProto(h.state),
          ackedIncarnation: h.ackedIncarnation ?? '',
        }
      : null,
    heartbeat: m.heartbeat ? stateFromProto(m.heartbeat.state) : null,
  };
}
