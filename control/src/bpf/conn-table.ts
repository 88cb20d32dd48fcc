// The connection table (sw_conns, a BPF hash map keyed by struct flow_key)
// as the controller uses it: queued inserts of admitted flows, lookups,
// deletes, and chunked walks that yield to the event loop between chunks.
// Buffers are preallocated; nothing is allocated per entry.
//
// Inserts use BPF_NOEXIST, one syscall each, not one BPF_ANY batch update.
// The kernel's batch update accepts no per-element flags, and overwriting is
// wrong here: the data plane punts every packet of a flow until its entry
// exists, so a backlogged punt ring can still hold a first packet (a SYN
// retransmission, say) of a flow admitted and established since. A BPF_ANY
// write would reset that live entry to FS_NONE and break the connection.
// With NOEXIST the live entry stays and EEXIST counts as admitted (the
// packet is then re-injected into it). The cost is ≈0.6 µs per insert
// instead of ≈0.3 µs, small next to the re-injection each insert precedes.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, type FlowEntry, type NewEntry } from './codec.js';
import { BPF_ANY, BPF_NOEXIST, BpfError, mapDelete, mapDeleteBatch, mapLookup, mapLookupBatch, mapUpdate, mapUpdateBatch } from './libbpf.js';

export class ConnTableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConnTableError';
  }
}

/**
 * Called with a chunk of entries: keys[i * FLOW_KEY_SIZE], values[i * FLOW_ENTRY_SIZE]; return false to stop.
 * A visitor that returns a promise (a sender waiting for its peer) is awaited before the next chunk.
 */
export type ChunkVisitor = (keys: Uint8Array, values: Uint8Array, count: number) => boolean | void | Promise<boolean | void>;
/** Called per entry; the buffers are reused, copy what must outlive the call. Return false to stop. */
export type EntryVisitor = (keyBuf: Uint8Array, keyOff: number, valBuf: Uint8Array, valOff: number) => boolean | void;

/** Hash-map batch iteration resumes from an opaque token (a u32 bucket index for BPF hash maps). */
const BATCH_TOKEN_SIZE = 8;
const DEFAULT_CHUNK = 4096;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class ConnTable {
  readonly insertCapacity: number;
  private readonly fd: number;
  private readonly queuedKeys: Uint8Array[];
  private readonly queuedValues: Uint8Array[];
  private queued = 0;
  private readonly failures = new Map<number, BpfError>();
  private readonly value = new Uint8Array(FLOW_ENTRY_SIZE);

  /** fd of sw_conns; insertCapacity bounds the inserts queued between flushes. */
  constructor(fd: number, insertCapacity = DEFAULT_CHUNK) {
    this.fd = fd;
    this.insertCapacity = insertCapacity;
    const keys = new Uint8Array(insertCapacity * FLOW_KEY_SIZE);
    const values = new Uint8Array(insertCapacity * FLOW_ENTRY_SIZE);
    this.queuedKeys = Array.from({ length: insertCapacity }, (_, i) => keys.subarray(i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE));
    this.queuedValues = Array.from({ length: insertCapacity }, (_, i) =>
      values.subarray(i * FLOW_ENTRY_SIZE, (i + 1) * FLOW_ENTRY_SIZE),
    );
  }

  /**
   * Queues a new entry (state FS_NONE) for the struct flow_key at
   * keyBuf[keyOff]; returns its slot, the index flushInserts reports
   * failures by. Throws when insertCapacity entries are already queued.
   */
  queueInsert(keyBuf: Uint8Array, keyOff: number, entry: NewEntry): number {
    if (this.queued === this.insertCapacity)
      throw new ConnTableError(`${this.insertCapacity} inserts already queued: flush first`);
    const slot = this.queued++;
    this.queuedKeys[slot]!.set(keyBuf.subarray(keyOff, keyOff + FLOW_KEY_SIZE));
    flowEntry.encodeNew(this.queuedValues[slot]!, 0, entry);
    return slot;
  }

  /**
   * Inserts the queued entries in slot order. Returns the slots that were
   * not inserted, with the error (E2BIG: table full). A key that already has
   * an entry keeps it and is not a failure. The returned map is reused by
   * the next flush.
   */
  flushInserts(): ReadonlyMap<number, BpfError> {
    this.failures.clear();
    for (let slot = 0; slot < this.queued; slot++) {
      try {
        mapUpdate(this.fd, this.queuedKeys[slot]!, this.queuedValues[slot]!, BPF_NOEXIST);
      } catch (err) {
        if (!(err instanceof BpfError)) throw err;
        if (err.code !== 'EEXIST') this.failures.set(slot, err);
      }
    }
    this.queued = 0;
    return this.failures;
  }

  /**
   * Writes count whole entries (packed keys and values) in one batch,
   * replacing existing ones: cluster replicas, whose sender decided they are
   * newer. Not for admitted flows (see the header: those use NOEXIST).
   */
  upsertBatch(keys: Uint8Array, values: Uint8Array, count: number): void {
    mapUpdateBatch(this.fd, keys, values, count, BPF_ANY);
  }

  /** Copies the entry for key (FLOW_KEY_SIZE bytes) into value; false if there is none. */
  lookupRaw(key: Uint8Array, value: Uint8Array): boolean {
    return mapLookup(this.fd, key, value);
  }

  lookup(key: Uint8Array): FlowEntry | undefined {
    return mapLookup(this.fd, key, this.value) ? flowEntry.decode(this.value, 0) : undefined;
  }

  /** Deletes one entry; false if there was none. */
  delete(key: Uint8Array): boolean {
    return mapDelete(this.fd, key);
  }

  /**
   * Deletes the first count keys of keys (packed struct flow_key). Keys that
   * have no entry are skipped (the kernel's batch stops at them; this goes
   * on). Returns how many were deleted and compacts keys in place so those
   * are its first entries, in their original order.
   */
  deleteBatch(keys: Uint8Array, count: number): number {
    let deleted = 0;
    let remaining = count;
    while (remaining > 0) {
      const start = deleted * FLOW_KEY_SIZE;
      const n = mapDeleteBatch(this.fd, keys.subarray(start, start + remaining * FLOW_KEY_SIZE), remaining);
      deleted += n;
      remaining -= n;
      if (remaining === 0) break;
      // keys[deleted] was missing: close the gap and go on with the rest.
      const missing = deleted * FLOW_KEY_SIZE;
      keys.copyWithin(missing, missing + FLOW_KEY_SIZE, (deleted + remaining) * FLOW_KEY_SIZE);
      remaining--;
    }
    return deleted;
  }

  /**
   * Walks the table a chunk at a time with batch lookups, yielding to the
   * event loop between chunks. Entries inserted or deleted meanwhile may or
   * may not be seen; each entry present throughout is seen once. Returns how
   * many entries were visited.
   */
  async scanChunks(chunk: number, visit: ChunkVisitor): Promise<number> {
    const keys = new Uint8Array(chunk * FLOW_KEY_SIZE);
    const values = new Uint8Array(chunk * FLOW_ENTRY_SIZE);
    let visited = 0;
    for (const count of this.chunks(keys, values, chunk)) {
      visited += count;
      if ((await visit(keys, values, count)) === false) break;
      await yieldToEventLoop();
    }
    return visited;
  }

  /** scanChunks, one entry at a time. */
  scan(visit: EntryVisitor, chunk = DEFAULT_CHUNK): Promise<number> {
    return this.scanChunks(chunk, (keys, values, count) => {
      for (let i = 0; i < count; i++) {
        if (visit(keys, i * FLOW_KEY_SIZE, values, i * FLOW_ENTRY_SIZE) === false) return false;
      }
      return true;
    });
  }

  /**
   * Number of entries. The kernel keeps no count we can read, so this walks
   * the table synchronously (≈0.3 µs per entry): for status, not hot paths.
   */
  count(chunk = DEFAULT_CHUNK): number {
    const keys = new Uint8Array(chunk * FLOW_KEY_SIZE);
    const values = new Uint8Array(chunk * FLOW_ENTRY_SIZE);
    let total = 0;
    for (const count of this.chunks(keys, values, chunk)) total += count;
    return total;
  }

  /** Fills keys/values chunk by chunk; yields each chunk's entry count. */
  private *chunks(keys: Uint8Array, values: Uint8Array, chunk: number): Generator<number> {
    const tokens = [new Uint8Array(BATCH_TOKEN_SIZE), new Uint8Array(BATCH_TOKEN_SIZE)] as const;
    let inToken: Uint8Array | null = null;
    for (;;) {
      const outToken: Uint8Array = inToken === tokens[0] ? tokens[1] : tokens[0];
      const { count, done } = this.lookupChunk(inToken, outToken, keys, values, chunk);
      if (count > 0) yield count;
      if (done) return;
      inToken = outToken;
    }
  }

  private lookupChunk(
    inToken: Uint8Array | null,
    outToken: Uint8Array,
    keys: Uint8Array,
    values: Uint8Array,
    chunk: number,
  ): { count: number; done: boolean } {
    try {
      return mapLookupBatch(this.fd, inToken, outToken, keys, values, chunk);
    } catch (err) {
      // ENOSPC: one hash bucket holds more entries than a chunk.
      throw new ConnTableError(`walking the connection table in chunks of ${chunk} failed`, { cause: err });
    }
  }
}
