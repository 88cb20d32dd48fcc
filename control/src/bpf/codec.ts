// Encoders and decoders for the structs shared with the XDP program. Every
// offset comes from the BTF-generated layout (gen/layout.ts); the sizes this
// module assumes are checked against it when the module loads, so a header
// change the codec does not follow fails at startup and in the unit tests.
//
// Two kinds of API: decode functions that build plain objects (management
// listings, state events: allocation is fine), and accessors that read one
// field from (buffer, offset) without allocating (per-record hot paths).
// Multi-byte fields are host order, which syncwall requires to be little
// endian; ports are network order, as in the packet.
import { endianness } from 'node:os';
import {
  FlowEntryLayout,
  FlowKeyLayout,
  FlowState,
  PuntFullLayout,
  PuntMetaLayout,
  PuntSmallLayout,
  StateEventLayout,
  SwFamily,
  TcpWindowLayout,
} from '../gen/layout.js';

/** The generated layout no longer matches what this codec was written for. */
export class LayoutDriftError extends Error {
  constructor(message: string) {
    super(`${message}: update control/src/bpf/codec.ts to follow bpf/include`);
    this.name = 'LayoutDriftError';
  }
}

/** A value cannot be encoded into the shared structs. */
export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

if (endianness() !== 'LE') throw new CodecError('syncwall supports little-endian hosts only');

interface FieldLayout {
  readonly offset: number;
  readonly size: number;
  readonly struct?: string;
}
interface StructLayout {
  readonly size: number;
  readonly fields: { readonly [name: string]: FieldLayout };
}

/** Offset of a field, after checking it still has the size (and nested struct) the codec assumes. */
function field<L extends StructLayout>(layout: L, struct: string, name: keyof L['fields'] & string, size: number, nested?: string): number {
  const f = layout.fields[name];
  if (!f) throw new LayoutDriftError(`${struct}.${name} is gone from the layout`);
  if (f.size !== size) throw new LayoutDriftError(`${struct}.${name} is ${f.size} bytes, the codec assumes ${size}`);
  if (f.struct !== nested) throw new LayoutDriftError(`${struct}.${name} is struct ${f.struct}, the codec assumes ${nested}`);
  return f.offset;
}

const K = {
  addrA: field(FlowKeyLayout, 'flow_key', 'addr_a', 16),
  addrB: field(FlowKeyLayout, 'flow_key', 'addr_b', 16),
  portA: field(FlowKeyLayout, 'flow_key', 'port_a', 2),
  portB: field(FlowKeyLayout, 'flow_key', 'port_b', 2),
  proto: field(FlowKeyLayout, 'flow_key', 'proto', 1),
  family: field(FlowKeyLayout, 'flow_key', 'family', 1),
};

const W = {
  end: field(TcpWindowLayout, 'tcp_window', 'td_end', 4),
  maxEnd: field(TcpWindowLayout, 'tcp_window', 'td_maxend', 4),
  maxWin: field(TcpWindowLayout, 'tcp_window', 'td_maxwin', 4),
  maxAck: field(TcpWindowLayout, 'tcp_window', 'td_maxack', 4),
  scale: field(TcpWindowLayout, 'tcp_window', 'td_scale', 1),
  flags: field(TcpWindowLayout, 'tcp_window', 'flags', 1),
};

const E = {
  state: field(FlowEntryLayout, 'flow_entry', 'state', 1),
  flags: field(FlowEntryLayout, 'flow_entry', 'flags', 1),
  helper: field(FlowEntryLayout, 'flow_entry', 'helper', 1),
  lastDir: field(FlowEntryLayout, 'flow_entry', 'last_dir', 1),
  ownerNode: field(FlowEntryLayout, 'flow_entry', 'owner_node', 2),
  ruleId: field(FlowEntryLayout, 'flow_entry', 'rule_id', 4),
  version: field(FlowEntryLayout, 'flow_entry', 'version', 4),
  win: field(FlowEntryLayout, 'flow_entry', 'win', 2 * TcpWindowLayout.size, 'tcp_window'),
  lastSeenNs: field(FlowEntryLayout, 'flow_entry', 'last_seen_ns', 8),
  packets: field(FlowEntryLayout, 'flow_entry', 'packets', 16),
  bytes: field(FlowEntryLayout, 'flow_entry', 'bytes', 16),
  createdNs: field(FlowEntryLayout, 'flow_entry', 'created_ns', 8),
  origIfindex: field(FlowEntryLayout, 'flow_entry', 'orig_ifindex', 4),
};

const P = {
  type: field(PuntMetaLayout, 'punt_meta', 'type', 2),
  srcIsA: field(PuntMetaLayout, 'punt_meta', 'src_is_a', 1),
  icmpType: field(PuntMetaLayout, 'punt_meta', 'icmp_type', 1),
  ifindex: field(PuntMetaLayout, 'punt_meta', 'ifindex', 4),
  tsNs: field(PuntMetaLayout, 'punt_meta', 'ts_ns', 8),
  pktLen: field(PuntMetaLayout, 'punt_meta', 'pkt_len', 4),
  capLen: field(PuntMetaLayout, 'punt_meta', 'cap_len', 2),
  l3Off: field(PuntMetaLayout, 'punt_meta', 'l3_off', 2),
  l4Off: field(PuntMetaLayout, 'punt_meta', 'l4_off', 2),
  icmpCode: field(PuntMetaLayout, 'punt_meta', 'icmp_code', 1),
  key: field(PuntMetaLayout, 'punt_meta', 'key', FlowKeyLayout.size, 'flow_key'),
};

const PUNT_DATA = field(PuntSmallLayout, 'punt_small', 'data', PuntSmallLayout.size - PuntMetaLayout.size);
if (field(PuntFullLayout, 'punt_full', 'data', PuntFullLayout.size - PuntMetaLayout.size) !== PUNT_DATA)
  throw new LayoutDriftError('punt_small and punt_full place their data at different offsets');

const S = {
  type: field(StateEventLayout, 'state_event', 'type', 2),
  oldState: field(StateEventLayout, 'state_event', 'old_state', 1),
  newState: field(StateEventLayout, 'state_event', 'new_state', 1),
  version: field(StateEventLayout, 'state_event', 'version', 4),
  tsNs: field(StateEventLayout, 'state_event', 'ts_ns', 8),
  key: field(StateEventLayout, 'state_event', 'key', FlowKeyLayout.size, 'flow_key'),
  ruleId: field(StateEventLayout, 'state_event', 'rule_id', 4),
  flags: field(StateEventLayout, 'state_event', 'flags', 1),
};

/** Record type (enum event_type) at the start of every ring-buffer record. */
const RECORD_TYPE = field(PuntMetaLayout, 'punt_meta', 'type', 2);
if (field(StateEventLayout, 'state_event', 'type', 2) !== RECORD_TYPE)
  throw new LayoutDriftError('punt_meta and state_event place their type at different offsets');

export const FLOW_KEY_SIZE = FlowKeyLayout.size;
export const FLOW_ENTRY_SIZE = FlowEntryLayout.size;

// Little-endian and network-order integer access on plain byte arrays: no
// DataView per call, so accessors stay allocation-free.
const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u64 = (b: Uint8Array, o: number): bigint => (BigInt(u32(b, o + 4)) << 32n) | BigInt(u32(b, o));
/** A u64 as a double: exact below 2^53 (104 days in ns), a few ns off beyond. */
const u64n = (b: Uint8Array, o: number): number => u32(b, o + 4) * 4294967296 + u32(b, o);

function putU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
}
function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}
function putBe16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}
function putU64(b: Uint8Array, o: number, v: bigint): void {
  putU32(b, o, Number(v & 0xffffffffn));
  putU32(b, o + 4, Number((v >> 32n) & 0xffffffffn));
}

/**
 * Field offsets and integer access for code that converts whole structs
 * field by field without building objects (cluster replication to and from
 * protobuf). Offsets are relative to the struct's start.
 */
export const structFields = { key: K, window: W, entry: E, windowSize: TcpWindowLayout.size } as const;
export const bytesLE = { u16, u32, be16, putU16, putU32, putBe16 } as const;

/** A normalized flow key: endpoint A is the smaller (address, port) pair. */
export interface FlowKey {
  family: number;
  proto: number;
  /** 4 bytes for IPv4, 16 for IPv6. */
  addrA: Uint8Array;
  addrB: Uint8Array;
  portA: number;
  portB: number;
}

function addrLength(family: number): number {
  if (family === SwFamily.SW_FAMILY_V4) return 4;
  if (family === SwFamily.SW_FAMILY_V6) return 16;
  throw new CodecError(`unknown address family ${family}`);
}

export const flowKey = {
  size: FlowKeyLayout.size,

  /** Writes a whole struct flow_key (padding and unused address bytes zeroed). */
  write(buf: Uint8Array, off: number, k: FlowKey): void {
    const len = addrLength(k.family);
    if (k.addrA.length !== len || k.addrB.length !== len)
      throw new CodecError(`family ${k.family} addresses must be ${len} bytes`);
    buf.fill(0, off, off + FlowKeyLayout.size);
    buf.set(k.addrA, off + K.addrA);
    buf.set(k.addrB, off + K.addrB);
    putBe16(buf, off + K.portA, k.portA);
    putBe16(buf, off + K.portB, k.portB);
    buf[off + K.proto] = k.proto;
    buf[off + K.family] = k.family;
  },

  read(buf: Uint8Array, off: number): FlowKey {
    const family = buf[off + K.family]!;
    const len = family === SwFamily.SW_FAMILY_V4 ? 4 : 16;
    return {
      family,
      proto: buf[off + K.proto]!,
      addrA: buf.slice(off + K.addrA, off + K.addrA + len),
      addrB: buf.slice(off + K.addrB, off + K.addrB + len),
      portA: be16(buf, off + K.portA),
      portB: be16(buf, off + K.portB),
    };
  },

  family: (buf: Uint8Array, off: number): number => buf[off + K.family]!,
  proto: (buf: Uint8Array, off: number): number => buf[off + K.proto]!,
  portA: (buf: Uint8Array, off: number): number => be16(buf, off + K.portA),
  portB: (buf: Uint8Array, off: number): number => be16(buf, off + K.portB),
  /** Offset of addr_a's 16 bytes (IPv4: 4 address bytes, then zeros). */
  addrAOffset: (off: number): number => off + K.addrA,
  addrBOffset: (off: number): number => off + K.addrB,
};

/** Per-direction TCP sequence tracking (struct tcp_window). */
export interface TcpWindow {
  end: number;
  maxEnd: number;
  maxWin: number;
  maxAck: number;
  scale: number;
  flags: number;
}

/** A decoded struct flow_entry; index 0 of the pairs is the originator's direction. */
export interface FlowEntry {
  state: number;
  flags: number;
  helper: number;
  lastDir: number;
  ownerNode: number;
  ruleId: number;
  version: number;
  win: [TcpWindow, TcpWindow];
  lastSeenNs: bigint;
  packets: [bigint, bigint];
  bytes: [bigint, bigint];
  createdNs: bigint;
  origIfindex: number;
}

/** What the controller decides when it admits a flow; the data plane fills in the rest. */
export interface NewEntry {
  flags: number;
  ruleId: number;
  helper: number;
  ownerNode: number;
  origIfindex: number;
  createdNs: bigint;
}

function readWindow(buf: Uint8Array, o: number): TcpWindow {
  return {
    end: u32(buf, o + W.end),
    maxEnd: u32(buf, o + W.maxEnd),
    maxWin: u32(buf, o + W.maxWin),
    maxAck: u32(buf, o + W.maxAck),
    scale: buf[o + W.scale]!,
    flags: buf[o + W.flags]!,
  };
}

function writeWindow(buf: Uint8Array, o: number, w: TcpWindow): void {
  putU32(buf, o + W.end, w.end);
  putU32(buf, o + W.maxEnd, w.maxEnd);
  putU32(buf, o + W.maxWin, w.maxWin);
  putU32(buf, o + W.maxAck, w.maxAck);
  buf[o + W.scale] = w.scale;
  buf[o + W.flags] = w.flags;
}

export const flowEntry = {
  size: FlowEntryLayout.size,

  decode(buf: Uint8Array, off: number): FlowEntry {
    return {
      state: buf[off + E.state]!,
      flags: buf[off + E.flags]!,
      helper: buf[off + E.helper]!,
      lastDir: buf[off + E.lastDir]!,
      ownerNode: u16(buf, off + E.ownerNode),
      ruleId: u32(buf, off + E.ruleId),
      version: u32(buf, off + E.version),
      win: [readWindow(buf, off + E.win), readWindow(buf, off + E.win + TcpWindowLayout.size)],
      lastSeenNs: u64(buf, off + E.lastSeenNs),
      packets: [u64(buf, off + E.packets), u64(buf, off + E.packets + 8)],
      bytes: [u64(buf, off + E.bytes), u64(buf, off + E.bytes + 8)],
      createdNs: u64(buf, off + E.createdNs),
      origIfindex: u32(buf, off + E.origIfindex),
    };
  },

  /** Writes a whole entry (reserved bytes zeroed): replicas and test fixtures. */
  encode(buf: Uint8Array, off: number, e: FlowEntry): void {
    buf.fill(0, off, off + FlowEntryLayout.size);
    buf[off + E.state] = e.state;
    buf[off + E.flags] = e.flags;
    buf[off + E.helper] = e.helper;
    buf[off + E.lastDir] = e.lastDir;
    putU16(buf, off + E.ownerNode, e.ownerNode);
    putU32(buf, off + E.ruleId, e.ruleId);
    putU32(buf, off + E.version, e.version);
    writeWindow(buf, off + E.win, e.win[0]);
    writeWindow(buf, off + E.win + TcpWindowLayout.size, e.win[1]);
    putU64(buf, off + E.lastSeenNs, e.lastSeenNs);
    putU64(buf, off + E.packets, e.packets[0]);
    putU64(buf, off + E.packets + 8, e.packets[1]);
    putU64(buf, off + E.bytes, e.bytes[0]);
    putU64(buf, off + E.bytes + 8, e.bytes[1]);
    putU64(buf, off + E.createdNs, e.createdNs);
    putU32(buf, off + E.origIfindex, e.origIfindex);
  },

  /**
   * Writes the entry the controller inserts for an admitted first packet:
   * state FS_NONE and no window data, so the data plane tracks the flow from
   * the re-injected packet on. last_seen starts at created so the expiry
   * sweeper measures idleness from admission.
   */
  encodeNew(buf: Uint8Array, off: number, e: NewEntry): void {
    buf.fill(0, off, off + FlowEntryLayout.size);
    buf[off + E.state] = FlowState.FS_NONE;
    buf[off + E.flags] = e.flags;
    buf[off + E.helper] = e.helper;
    putU16(buf, off + E.ownerNode, e.ownerNode);
    putU32(buf, off + E.ruleId, e.ruleId);
    putU64(buf, off + E.lastSeenNs, e.createdNs);
    putU64(buf, off + E.createdNs, e.createdNs);
    putU32(buf, off + E.origIfindex, e.origIfindex);
  },

  state: (buf: Uint8Array, off: number): number => buf[off + E.state]!,
  flags: (buf: Uint8Array, off: number): number => buf[off + E.flags]!,
  version: (buf: Uint8Array, off: number): number => u32(buf, off + E.version),
  ruleId: (buf: Uint8Array, off: number): number => u32(buf, off + E.ruleId),
  origIfindex: (buf: Uint8Array, off: number): number => u32(buf, off + E.origIfindex),
  /** last_seen_ns as a double (see u64n): enough for idle-time comparisons. */
  lastSeenNs: (buf: Uint8Array, off: number): number => u64n(buf, off + E.lastSeenNs),
};

/** enum event_type of a ring-buffer record (punt or state event). */
export const recordType = (buf: Uint8Array, off: number): number => u16(buf, off + RECORD_TYPE);

/** Field accessors for a punt record: struct punt_meta followed by cap_len packet bytes. */
export const puntMeta = {
  type: (buf: Uint8Array, off: number): number => u16(buf, off + P.type),
  srcIsA: (buf: Uint8Array, off: number): boolean => buf[off + P.srcIsA] !== 0,
  icmpType: (buf: Uint8Array, off: number): number => buf[off + P.icmpType]!,
  icmpCode: (buf: Uint8Array, off: number): number => buf[off + P.icmpCode]!,
  ifindex: (buf: Uint8Array, off: number): number => u32(buf, off + P.ifindex),
  tsNs: (buf: Uint8Array, off: number): bigint => u64(buf, off + P.tsNs),
  pktLen: (buf: Uint8Array, off: number): number => u32(buf, off + P.pktLen),
  capLen: (buf: Uint8Array, off: number): number => u16(buf, off + P.capLen),
  l3Off: (buf: Uint8Array, off: number): number => u16(buf, off + P.l3Off),
  l4Off: (buf: Uint8Array, off: number): number => u16(buf, off + P.l4Off),
  /** Offset of the embedded struct flow_key (for flowKey.read or copying the key bytes). */
  keyOffset: (off: number): number => off + P.key,
  /** Offset of the first packet byte. */
  dataOffset: (off: number): number => off + PUNT_DATA,
};

/** A decoded struct state_event. */
export interface StateEvent {
  type: number;
  oldState: number;
  newState: number;
  version: number;
  tsNs: bigint;
  key: FlowKey;
  ruleId: number;
  flags: number;
}

export const stateEvent = {
  decode(buf: Uint8Array, off: number): StateEvent {
    return {
      type: u16(buf, off + S.type),
      oldState: buf[off + S.oldState]!,
      newState: buf[off + S.newState]!,
      version: u32(buf, off + S.version),
      tsNs: u64(buf, off + S.tsNs),
      key: flowKey.read(buf, off + S.key),
      ruleId: u32(buf, off + S.ruleId),
      flags: buf[off + S.flags]!,
    };
  },
};
