// Records and removals gathered per target peer, sent as few messages as
// possible: one `entries` message per (peer, class) and one `removes` per
// peer, split at MAX_ENTRIES_PER_MESSAGE. Returns the last sequence number
// per peer so callers can wait for the acks (drain).
import { FlowKeys } from './flow-keys.js';
import { FlowRecords, type ClockReading } from './flow-records.js';
import type { StateClass, SyncPayload } from './types.js';

/** Entries per sync message; a bulk transfer is many of these. */
export const MAX_ENTRIES_PER_MESSAGE = 1000;

export type SendFn = (to: number, payload: SyncPayload) => number;

interface PeerBox {
  /** Messages' worth of records, each at most MAX_ENTRIES_PER_MESSAGE. */
  node: FlowRecords[];
  common: FlowRecords[];
  removes: FlowKeys[];
}

export class Outbox {
  private readonly boxes = new Map<number, PeerBox>();
  private readonly send: SendFn;
  private readonly now: ClockReading;
  private readonly capacity: number;

  /**
   * `now`: the clock reading the entries' times are made relative to;
   * `expected`: how many entries the caller may queue (at most), so that a
   * message's records buffer is allocated once at the size it needs.
   */
  constructor(send: SendFn, now: ClockReading, expected: number) {
    this.send = send;
    this.now = now;
    this.capacity = Math.max(1, Math.min(expected, MAX_ENTRIES_PER_MESSAGE));
  }

  get empty(): boolean {
    return this.boxes.size === 0;
  }

  /** Queues the table entry at (keys[kOff], values[vOff]) for peer `to`. */
  addEntry(to: number, cls: StateClass, keys: Uint8Array, kOff: number, values: Uint8Array, vOff: number): void {
    const parts = this.box(to)[cls];
    let last = parts.at(-1);
    if (!last || last.length === MAX_ENTRIES_PER_MESSAGE) parts.push((last = new FlowRecords(this.capacity)));
    last.addEntry(keys, kOff, values, vOff, this.now);
  }

  /** Queues the removal of the flow whose key is at keys[off] for peer `to`. */
  addRemove(to: number, keys: Uint8Array, off: number): void {
    const parts = this.box(to).removes;
    let last = parts.at(-1);
    if (!last || last.length === MAX_ENTRIES_PER_MESSAGE) parts.push((last = new FlowKeys()));
    last.add(keys, off);
  }

  /** Sends everything gathered; returns the last seq sent to each peer. */
  flush(): Map<number, number> {
    const lastSeq = new Map<number, number>();
    for (const [to, box] of this.boxes) {
      for (const cls of ['node', 'common'] as const) {
        for (const entries of box[cls]) lastSeq.set(to, this.send(to, { kind: 'entries', cls, entries }));
      }
      for (const keys of box.removes) lastSeq.set(to, this.send(to, { kind: 'removes', keys }));
    }
    this.boxes.clear();
    return lastSeq;
  }

  private box(to: number): PeerBox {
    let box = this.boxes.get(to);
    if (!box) {
      box = { node: [], common: [], removes: [] };
      this.boxes.set(to, box);
    }
    return box;
  }
}
