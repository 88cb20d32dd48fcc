// Connection entries in transit between nodes, as one packed buffer of
// struct flow_key and one of struct flow_entry (the layout the map uses),
// not an object per entry: replication reads them from the map, the wire
// codec (entry-proto.ts) converts them to and from protobuf field by field,
// and the replica store writes them to the map in batches.
//
// Node clocks differ, so while in transit created_ns and last_seen_ns hold
// how long before the sender's clock reading the times lie ("ago", in ns),
// not the times themselves; the receiver turns them back into times on its
// own clock. Both directions are the same clamped subtraction (reading −
// field, 0 when the field is later), done on u32 halves: exact over the
// whole u64 range without a BigInt per entry.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, bytesLE, structFields } from '../bpf/codec.js';

const TWO_32 = 0x1_0000_0000;
const { u32, putU32 } = bytesLE;
const E = structFields.entry;

/** A CLOCK_MONOTONIC reading (ns) as u32 halves: taken once per batch, used for every entry in it. */
export class ClockReading {
  readonly hi: number;
  readonly lo: number;

  constructor(ns: bigint) {
    this.hi = Number((ns >> 32n) & 0xffff_ffffn);
    this.lo = Number(ns & 0xffff_ffffn);
  }
}

/** buf's u64 at off becomes max(0, now − it): a time into "how long ago", and back. */
function reflect(buf: Uint8Array, off: number, now: ClockReading): void {
  let lo = now.lo - u32(buf, off);
  let hi = now.hi - u32(buf, off + 4);
  if (lo < 0) {
    lo += TWO_32;
    hi--;
  }
  if (hi < 0) lo = hi = 0;
  putU32(buf, off, lo);
  putU32(buf, off + 4, hi);
}

/** A native copy: a view costs less than a JS loop over 152 bytes while the sync's code is still cold. */
function copyBytes(dst: Uint8Array, dOff: number, src: Uint8Array, sOff: number, n: number): void {
  dst.set(src.subarray(sOff, sOff + n), dOff);
}

export class FlowRecords {
  /** Record i's key is at keys[i * FLOW_KEY_SIZE], its entry at values[i * FLOW_ENTRY_SIZE]. */
  keys: Uint8Array;
  values: Uint8Array;
  private count = 0;
  /** The slot after the last record was handed out by reserve() and may hold bytes. */
  private reserved = false;

  constructor(capacity = 64) {
    this.keys = new Uint8Array(capacity * FLOW_KEY_SIZE);
    this.values = new Uint8Array(capacity * FLOW_ENTRY_SIZE);
  }

  get length(): number {
    return this.count;
  }

  /**
   * The slot after the last record, all zero, for a decoder to fill; it
   * becomes a record at commit() (a decoder that fails halfway leaves no
   * record). Buffers start zeroed, so only a slot a failed decoder wrote to
   * needs zeroing again.
   */
  reserve(): number {
    const i = this.room();
    if (this.reserved) {
      this.keys.fill(0, i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE);
      this.values.fill(0, i * FLOW_ENTRY_SIZE, (i + 1) * FLOW_ENTRY_SIZE);
    }
    this.reserved = true;
    return i;
  }

  commit(): void {
    this.count++;
    this.reserved = false;
  }

  /** Appends a table entry (key at keys[kOff], entry at values[vOff]), its times made relative to now. */
  addEntry(keys: Uint8Array, kOff: number, values: Uint8Array, vOff: number, now: ClockReading): void {
    const i = this.room();
    copyBytes(this.keys, i * FLOW_KEY_SIZE, keys, kOff, FLOW_KEY_SIZE);
    const at = i * FLOW_ENTRY_SIZE;
    copyBytes(this.values, at, values, vOff, FLOW_ENTRY_SIZE);
    reflect(this.values, at + E.createdNs, now);
    reflect(this.values, at + E.lastSeenNs, now);
    this.count++;
  }

  /** Appends a copy of record i of `from`. */
  addRecord(from: FlowRecords, i: number): void {
    const j = this.room();
    copyBytes(this.keys, j * FLOW_KEY_SIZE, from.keys, i * FLOW_KEY_SIZE, FLOW_KEY_SIZE);
    copyBytes(this.values, j * FLOW_ENTRY_SIZE, from.values, i * FLOW_ENTRY_SIZE, FLOW_ENTRY_SIZE);
    this.count++;
  }

  /** Turns record i's times from "how long ago" into times on the clock of `now`, in place (the receiver's side). */
  rebuildTimes(i: number, now: ClockReading): void {
    const at = i * FLOW_ENTRY_SIZE;
    reflect(this.values, at + E.createdNs, now);
    reflect(this.values, at + E.lastSeenNs, now);
  }

  /** The index after the last record, with room for it. */
  private room(): number {
    if ((this.count + 1) * FLOW_KEY_SIZE > this.keys.length) this.grow();
    return this.count;
  }

  private grow(): void {
    // by four: a message's worth (1000) after two copies
    const capacity = Math.max(64, (4 * this.keys.length) / FLOW_KEY_SIZE);
    const keys = new Uint8Array(capacity * FLOW_KEY_SIZE);
    const values = new Uint8Array(capacity * FLOW_ENTRY_SIZE);
    keys.set(this.keys);
    values.set(this.values);
    this.keys = keys;
    this.values = values;
  }
}
