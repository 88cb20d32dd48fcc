// Records and removals gathered per target peer, sent as few messages as
// possible: one `entries` message per (peer, class) and one `removes` per
// peer, split at MAX_ENTRIES_PER_MESSAGE. Returns the last sequence number
// per peer so callers can wait for the acks (drain).
import type { FlowKey } from '../bpf/codec.js';
import type { FlowRecord, StateClass, SyncPayload } from './types.js';

/** Entries per sync message; a bulk transfer is many of these. */
export const MAX_ENTRIES_PER_MESSAGE = 1000;

export type SendFn = (to: number, payload: SyncPayload) => number;

interface PeerBox {
  node: FlowRecord[];
  common: FlowRecord[];
  removes: FlowKey[];
}

export class Outbox {
  private readonly boxes = new Map<number, PeerBox>();
  private readonly send: SendFn;

  constructor(send: SendFn) {
    this.send = send;
  }

  get empty(): boolean {
    return this.boxes.size === 0;
  }

  addEntry(to: number, cls: StateClass, record: FlowRecord): void {
    this.box(to)[cls].push(record);
  }

  addRemove(to: number, key: FlowKey): void {
    this.box(to).removes.push(key);
  }

  /** Sends everything gathered; returns the last seq sent to each peer. */
  flush(): Map<number, number> {
    const lastSeq = new Map<number, number>();
    for (const [to, box] of this.boxes) {
      for (const cls of ['node', 'common'] as const) {
        for (const part of chunks(box[cls])) lastSeq.set(to, this.send(to, { kind: 'entries', cls, entries: part }));
      }
      for (const part of chunks(box.removes)) lastSeq.set(to, this.send(to, { kind: 'removes', keys: part }));
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

function* chunks<T>(items: T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += MAX_ENTRIES_PER_MESSAGE) yield items.slice(i, i + MAX_ENTRIES_PER_MESSAGE);
}
