// Keys of removed flows in transit between nodes: one packed buffer of
// struct flow_key, not an object per key (every closed connection is one).
// The wire codec (entry-proto.ts) converts them to and from protobuf
// FlowKey messages, and the replica store deletes them from the map in
// batches straight from this buffer.
import { FLOW_KEY_SIZE } from '../bpf/codec.js';

export class FlowKeys {
  /** Key i is at keys[i * FLOW_KEY_SIZE]. */
  keys: Uint8Array;
  private count = 0;
  /** The slot after the last key was handed out by reserve() and may hold bytes. */
  private reserved = false;

  constructor(capacity = 64) {
    this.keys = new Uint8Array(Math.max(1, capacity) * FLOW_KEY_SIZE);
  }

  get length(): number {
    return this.count;
  }

  /** Appends a copy of the key at keys[off]. */
  add(keys: Uint8Array, off: number): void {
    const i = this.room();
    this.keys.set(keys.subarray(off, off + FLOW_KEY_SIZE), i * FLOW_KEY_SIZE);
    this.count++;
  }

  /** The slot after the last key, all zero, for a decoder to fill; it becomes a key at commit() (see FlowRecords.reserve). */
  reserve(): number {
    const i = this.room();
    if (this.reserved) this.keys.fill(0, i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE);
    this.reserved = true;
    return i;
  }

  commit(): void {
    this.count++;
    this.reserved = false;
  }

  private room(): number {
    if ((this.count + 1) * FLOW_KEY_SIZE > this.keys.length) {
      const keys = new Uint8Array(this.keys.length * 4);
      keys.set(this.keys);
      this.keys = keys;
    }
    return this.count;
  }
}
