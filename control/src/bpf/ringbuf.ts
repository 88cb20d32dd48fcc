// Consumer of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) that never holds the
// event loop for long. libbpf 1.1's ring_buffer__consume has no budget, so
// this walks the ring itself, as libbpf's ringbuf_process_ring does:
//
//   offset 0 of the map:        consumer page (we write consumer_pos)   RW
//   offset pagesize:            producer page (producer_pos)            RO
//   offset 2 * pagesize:        data, size bytes, mapped twice in a row RO
//
// Each record is an 8-byte header (u32 len with BUSY and DISCARD bits, u32
// page offset) followed by len bytes, rounded up to 8. The double mapping
// means a record never wraps: it is always contiguous in the data view.
//
// Woken by poll on the map fd, it handles at most `budget` records per turn
// of the event loop and continues from setImmediate, so a producer that
// outpaces it cannot starve timers and sockets.
import { mmapFd, munmap, pageSize, pollReadable, type Mapping } from './libbpf.js';

const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const LEN_MASK = 0x3fffffff;
const HDR_SIZE = 8;
const TWO_32 = 4294967296;

export class RingBufferError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RingBufferError';
  }
}

export interface RingBufferOptions {
  mapFd: number;
  /** The map's max_entries: data bytes, a power of two and a multiple of the page size. */
  size: number;
  /** Records handled per turn of the event loop (default 4096). */
  budget?: number;
  /**
   * One record: buf[off, off + len). buf is a view of the ring itself, valid
   * only during the call; copy what must outlive it.
   */
  onRecord(buf: Uint8Array, off: number, len: number): void;
  /** After each turn that handled at least one record: flush batched work here. */
  onBatchEnd?(): void;
  /** Exceptions thrown by the handlers; the record counts as consumed. */
  onError(err: unknown): void;
}

export class RingBufferConsumer {
  readonly budget: number;
  private readonly consumerPage: Mapping;
  private readonly producerPages: Mapping;
  /** consumer_pos as u64 (for reads and carries) and as two u32 halves (cheap stores). */
  private readonly consPos64: BigUint64Array;
  private readonly consPos32: Uint32Array;
  private readonly prodPos64: BigUint64Array;
  private readonly data: Uint8Array;
  private readonly dataWords: Uint32Array;
  private readonly mask: number;
  private readonly handlers: RingBufferOptions;
  private readonly mapFd: number;
  private poller: { stop(): void } | undefined;
  private continuation: NodeJS.Immediate | undefined;
  private processing = false;
  private closed = false;

  /** Maps the ring; records are handled once start() is called (or by consume()). */
  constructor(opts: RingBufferOptions) {
    const page = pageSize();
    const { size, mapFd } = opts;
    this.mapFd = mapFd;
    this.handlers = opts;
    if (size <= 0 || (size & (size - 1)) !== 0 || size % page !== 0)
      throw new RingBufferError(`ring size ${size} is not a power of two multiple of the page size ${page}`);
    this.budget = opts.budget ?? 4096;
    this.mask = size - 1;
    this.consumerPage = mmapFd(mapFd, page, true, 0);
    try {
      this.producerPages = mmapFd(mapFd, page + 2 * size, false, page);
    } catch (err) {
      munmap(this.consumerPage);
      throw new RingBufferError('mapping the ring buffer failed', { cause: err });
    }
    this.consPos64 = new BigUint64Array(this.consumerPage.buffer, 0, 1);
    this.consPos32 = new Uint32Array(this.consumerPage.buffer, 0, 2);
    this.prodPos64 = new BigUint64Array(this.producerPages.buffer, 0, 1);
    this.data = new Uint8Array(this.producerPages.buffer, page, 2 * size);
    this.dataWords = new Uint32Array(this.producerPages.buffer, page, (2 * size) / 4);
  }

  /** Starts handling records whenever the ring becomes readable. */
  start(): void {
    if (this.closed || this.poller) return;
    // While a continuation is pending it owns the next turn: poll readiness
    // (level-triggered, so it repeats while data is left) must not add more.
    this.poller = pollReadable(
      this.mapFd,
      () => {
        if (!this.continuation) this.turn();
      },
      (err) => this.handlers.onError(err),
    );
    // Records already waiting are handled without relying on a wakeup for them.
    this.continuation = setImmediate(() => this.turn());
  }

  /**
   * Handles up to maxRecords committed records now; returns how many were
   * handled (discarded records are skipped and not counted).
   */
  consume(maxRecords = this.budget): number {
    if (this.closed || this.processing) return 0;
    this.processing = true;
    let handled = 0;
    try {
      handled = this.walk(maxRecords);
    } finally {
      this.processing = false;
      if (this.closed) this.unmap();
    }
    return handled;
  }

  /** Stops polling and unmaps the ring; safe to call from inside a handler. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poller?.stop();
    if (this.continuation) clearImmediate(this.continuation);
    this.continuation = undefined;
    if (!this.processing) this.unmap();
  }

  private turn(): void {
    this.continuation = undefined;
    if (this.closed) return;
    const handled = this.consume(this.budget);
    if (handled > 0 && this.handlers.onBatchEnd && !this.closed) {
      try {
        this.handlers.onBatchEnd();
      } catch (err) {
        this.handlers.onError(err);
      }
    }
    // A full budget means more may be waiting: come back after other I/O.
    if (handled === this.budget && !this.closed) this.continuation = setImmediate(() => this.turn());
  }

  private walk(maxRecords: number): number {
    const cons = Atomics.load(this.consPos64, 0);
    let lo = Atomics.load(this.consPos32, 0);
    let hi = Atomics.load(this.consPos32, 1);
    let avail = Number(Atomics.load(this.prodPos64, 0) - cons);
    let handled = 0;
    while (avail > 0 && handled < maxRecords) {
      const off = lo & this.mask;
      const header = Atomics.load(this.dataWords, off >>> 2);
      if ((header & BUSY_BIT) !== 0) break;
      const len = header & LEN_MASK;
      const total = (len + HDR_SIZE + 7) & ~7;
      if ((header & DISCARD_BIT) === 0) {
        handled++;
        try {
          this.handlers.onRecord(this.data, off + HDR_SIZE, len);
        } catch (err) {
          this.handlers.onError(err);
        }
      }
      avail -= total;
      lo += total;
      // Release the space right away, like libbpf: the low word alone unless it carried.
      if (lo >= TWO_32) {
        lo -= TWO_32;
        hi = (hi + 1) >>> 0;
        Atomics.store(this.consPos64, 0, (BigInt(hi) << 32n) | BigInt(lo));
      } else {
        Atomics.store(this.consPos32, 0, lo);
      }
      if (this.closed) break;
      if (avail <= 0) avail = Number(Atomics.load(this.prodPos64, 0) - ((BigInt(hi) << 32n) | BigInt(lo)));
    }
    return handled;
  }

  private unmap(): void {
    munmap(this.producerPages);
    munmap(this.consumerPage);
  }
}
