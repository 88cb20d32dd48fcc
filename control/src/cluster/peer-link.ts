// Reliable, ordered delivery of payloads to one peer over whichever stream is
// currently attached, plus that peer's liveness. Payloads get consecutive
// sequence numbers and wait in a bounded queue until the peer's cumulative ack
// covers them; a new stream starts by resending everything not acked. Queued
// payloads go out on the next tick (setImmediate), many per frame, so a burst
// of send() calls costs one frame and an idle link adds no timer delay.
import type { Logger } from '../log.js';
import { decodePayload, encodeFrame, payloadFlowCount, type Hello, type InFrame } from './transport-codec.js';
import type { TransportCounters } from './transport-stats.js';
import type { NodeState, PeerInfo, SyncPayload } from './types.js';

/** What a link needs of a gRPC duplex call (client or server side). */
export interface FrameStream {
  write(frame: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

export interface LinkHooks {
  message(from: number, payload: SyncPayload): void;
  peerState(id: number, state: NodeState, incarnation: string): void;
}

export interface LinkOptions {
  id: number;
  address: string;
  failureTimeoutMs: number;
  /**
   * Bound of the unacked queue in bytes; on overflow the oldest payloads are
   * dropped (on-demand updates to a peer that does not ack; the periodic
   * pass heals). Bulk senders wait for room first (waitForRoom), so a bulk
   * transfer is paced by the peer's acks instead.
   */
  maxQueueBytes: number;
  /** Frames are cut at this size (a single larger payload still goes whole). */
  maxFrameBytes: number;
}

interface Outgoing {
  bytes: Uint8Array;
  flows: number;
  queuedAt: number;
}

interface Waiter {
  seq: number;
  resolve(acked: boolean): void;
  timer: NodeJS.Timeout;
}

/** Dropped seq ranges remembered for waitAcked; older ones are forgotten. */
const MAX_DROPPED_RANGES = 64;

export class PeerLink {
  state: NodeState | 'unknown' = 'unknown';
  /** The peer's incarnation as of its last Hello ('' before any). */
  incarnation = '';
  private lastHeardAt: number | null = null;
  private liveness: NodeJS.Timeout | null = null;
  /** the liveness timer fired and its verdict is pending */
  private livenessDue = false;

  // sending: queue[head] has seq headSeq; seqs in the queue are consecutive up to nextSeq - 1
  private queue: Outgoing[] = [];
  private head = 0;
  private headSeq = 1;
  private nextSeq = 1;
  private ackedSeq = 0;
  private queueBytes = 0;
  /** next seq to write on the current stream */
  private sendSeq = 1;
  private maxWrittenSeq = 0;
  private dropped: [number, number][] = [];
  private overflowing = false;
  private waiters: Waiter[] = [];
  /** Bulk senders waiting for the queue to drain to half its bound. */
  private roomWaiters: (() => void)[] = [];

  // receiving
  private lastReceived = 0;
  private ackOwed = false;

  private stream: FrameStream | null = null;
  private closeStream: (() => void) | null = null;
  private blocked = false;
  private flushScheduled = false;

  constructor(
    private readonly opts: LinkOptions,
    private readonly hooks: LinkHooks,
    private readonly counters: TransportCounters,
    private readonly log: Logger,
  ) {}

  get id(): number {
    return this.opts.id;
  }

  get address(): string {
    return this.opts.address;
  }

  get connected(): boolean {
    return this.stream !== null;
  }

  /** Queues an encoded payload; returns its seq. */
  enqueue(bytes: Uint8Array, flows: number): number {
    const seq = this.nextSeq++;
    this.queue.push({ bytes, flows, queuedAt: performance.now() });
    this.queueBytes += bytes.length;
    if (this.queueBytes > this.opts.maxQueueBytes) this.dropOldest();
    this.scheduleFlush();
    return seq;
  }

  /**
   * Resolves once the unacked queue is at most half its bound (at once if it
   * is), or the peer failed or the link shut down: a bulk sender calls this
   * between chunks so a big transfer never overflows the queue.
   */
  waitForRoom(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  waitAcked(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.wasDropped(seq) || seq >= this.nextSeq) return Promise.resolve(false);
    if (seq <= this.ackedSeq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Ack and incarnation to put in our Hello to this peer. */
  helloAck(): { ack: number; ackedIncarnation: string } {
    return { ack: this.lastReceived, ackedIncarnation: this.incarnation };
  }

  /**
   * Takes the peer's Hello (already authenticated). A new incarnation is a
   * restarted process: its sequence numbers start over. `ownIncarnation`
   * decides whether the Hello's ack is about us.
   */
  helloReceived(hello: Hello, ack: number, ownIncarnation: string): void {
    if (hello.incarnation !== this.incarnation) {
      this.incarnation = hello.incarnation;
      this.lastReceived = 0;
    }
    if (hello.ackedIncarnation === ownIncarnation) this.processAck(ack);
    this.heard();
    this.state = hello.state;
    this.hooks.peerState(this.id, hello.state, hello.incarnation);
  }

  /** Makes `stream` the link's stream (replacing any other) and resends what is unacked. */
  attach(stream: FrameStream, close: () => void): void {
    if (this.stream) this.detachCurrent();
    this.stream = stream;
    this.closeStream = close;
    this.blocked = false;
    this.sendSeq = this.headSeq;
    this.counters.connects++;
    this.scheduleFlush();
  }

  /** The stream ended (either side): forget it if it is still ours. */
  detach(stream: FrameStream): void {
    if (this.stream === stream) {
      this.stream = null;
      this.closeStream = null;
    }
  }

  onFrame(frame: InFrame): void {
    this.heard();
    if (frame.ack > this.ackedSeq) this.processAck(frame.ack);
    const n = frame.payloads.length;
    if (n > 0) {
      for (let i = 0; i < n; i++) {
        const seq = frame.firstSeq + i;
        if (seq <= this.lastReceived) {
          this.counters.duplicatesSkipped++;
          continue;
        }
        // a gap means the sender dropped payloads from a full queue; the periodic pass heals
        this.lastReceived = seq;
        this.deliver(frame.payloads[i]!);
      }
      this.ackOwed = true;
      this.scheduleFlush();
    }
    if (frame.heartbeat && frame.heartbeat !== this.state) {
      this.state = frame.heartbeat;
      this.hooks.peerState(this.id, frame.heartbeat, this.incarnation);
    }
  }

  sendHeartbeat(state: NodeState): void {
    if (!this.stream || this.blocked) return;
    this.ackOwed = false;
    this.write(this.stream, encodeFrame({ ack: this.lastReceived, firstSeq: 0, payloads: [], heartbeat: state }));
  }

  info(now: number): PeerInfo {
    const oldest = this.queue[this.head];
    return {
      id: this.id,
      address: this.opts.address,
      connected: this.connected,
      state: this.state,
      incarnation: this.incarnation,
      lastHeartbeatAgoMs: this.lastHeardAt === null ? null : Math.round(now - this.lastHeardAt),
      sentSeq: this.nextSeq - 1,
      ackedSeq: this.ackedSeq,
      unacked: this.queue.length - this.head,
      lagMs: oldest ? Math.round(now - oldest.queuedAt) : null,
    };
  }

  /** Stops timers, closes the stream and answers every waiter with false. */
  shutdown(): void {
    if (this.liveness) clearTimeout(this.liveness);
    this.liveness = null;
    if (this.stream) this.detachCurrent();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.waiters = [];
    this.wakeRoomWaiters();
  }

  private deliver(bytes: Uint8Array): void {
    let payload: SyncPayload;
    try {
      payload = decodePayload(bytes);
    } catch (err) {
      this.counters.malformed++;
      this.log.warn({ peer: this.id, err }, 'sync payload skipped: cannot decode');
      return;
    }
    this.counters.payloadsReceived++;
    this.counters.flowsReceived += payloadFlowCount(payload);
    try {
      this.hooks.message(this.id, payload);
    } catch (err) {
      this.log.error({ peer: this.id, err }, 'sync message handler failed');
    }
  }

  private heard(): void {
    this.lastHeardAt = performance.now();
    if (!this.liveness) this.armLiveness(this.opts.failureTimeoutMs);
    else if (!this.livenessDue) this.liveness.refresh();
  }

  private armLiveness(ms: number): void {
    this.liveness = setTimeout(() => this.timedOut(), ms);
  }

  private timedOut(): void {
    // Timers run before pending I/O: after a stall of our own event loop the
    // peer's frames may be waiting unread, so decide once they have been read.
    // Timers also measure from the loop's cached clock and may fire a little
    // early: measure the silence ourselves and wait out the rest.
    this.livenessDue = true;
    setImmediate(() => {
      this.livenessDue = false;
      if (this.liveness === null) return; // shut down meanwhile
      const silentMs = performance.now() - (this.lastHeardAt ?? 0);
      if (silentMs < this.opts.failureTimeoutMs) return this.armLiveness(this.opts.failureTimeoutMs - silentMs);
      this.liveness = null;
      this.declareFailed();
    });
  }

  private declareFailed(): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.counters.heartbeatTimeouts++;
    this.log.warn({ peer: this.id, silentMs: this.opts.failureTimeoutMs }, 'sync peer failed: no heartbeat');
    // a silent connection may be dead without either side noticing: start afresh
    if (this.stream) this.detachCurrent();
    this.wakeRoomWaiters();
    this.hooks.peerState(this.id, 'failed', this.incarnation);
  }

  private detachCurrent(): void {
    const close = this.closeStream;
    this.stream = null;
    this.closeStream = null;
    close?.();
  }

  private processAck(ack: number): void {
    const upTo = Math.min(ack, this.nextSeq - 1);
    if (upTo <= this.ackedSeq) return;
    while (this.headSeq <= upTo && this.head < this.queue.length) this.release();
    this.headSeq = Math.max(this.headSeq, upTo + 1);
    this.ackedSeq = upTo;
    if (this.sendSeq < this.headSeq) this.sendSeq = this.headSeq;
    this.compact();
    if (this.queueBytes <= this.opts.maxQueueBytes / 2) this.overflowing = false;
    if (this.hasRoom()) this.wakeRoomWaiters();
    if (this.waiters.length > 0) {
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.seq <= upTo) {
          clearTimeout(w.timer);
          w.resolve(!this.wasDropped(w.seq));
        } else still.push(w);
      }
      this.waiters = still;
    }
  }

  private hasRoom(): boolean {
    return this.queueBytes <= this.opts.maxQueueBytes / 2 || this.state === 'failed';
  }

  private wakeRoomWaiters(): void {
    const waiting = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of waiting) resolve();
  }

  private release(): Outgoing {
    const out = this.queue[this.head]!;
    this.queue[this.head] = undefined as unknown as Outgoing; // let it be collected before compaction
    this.head++;
    this.headSeq++;
    this.queueBytes -= out.bytes.length;
    return out;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private dropOldest(): void {
    const from = this.headSeq;
    let n = 0;
    while (this.queueBytes > this.opts.maxQueueBytes && this.head < this.queue.length - 1) {
      this.release();
      n++;
    }
    if (n === 0) return;
    const to = this.headSeq - 1;
    const last = this.dropped[this.dropped.length - 1];
    if (last && last[1] === from - 1) last[1] = to;
    else this.dropped.push([from, to]);
    if (this.dropped.length > MAX_DROPPED_RANGES) this.dropped.shift();
    if (this.sendSeq < this.headSeq) this.sendSeq = this.headSeq;
    this.counters.queueDrops += n;
    this.compact();
    if (!this.overflowing) {
      this.overflowing = true;
      this.log.warn({ peer: this.id, maxQueueBytes: this.opts.maxQueueBytes }, 'sync queue full: dropping the oldest unacked payloads');
    }
    for (const w of this.waiters) {
      if (w.seq <= to) {
        clearTimeout(w.timer);
        w.resolve(false);
      }
    }
    this.waiters = this.waiters.filter((w) => w.seq > to);
  }

  private wasDropped(seq: number): boolean {
    return this.dropped.some(([from, to]) => seq >= from && seq <= to);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || !this.stream) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const stream = this.stream;
    if (!stream) return;
    while (!this.blocked && this.sendSeq < this.nextSeq) {
      const first = this.sendSeq;
      const payloads: Uint8Array[] = [];
      let bytes = 0;
      let flows = 0;
      for (let i = first - this.headSeq + this.head; i < this.queue.length; i++) {
        const out = this.queue[i]!;
        if (payloads.length > 0 && bytes + out.bytes.length > this.opts.maxFrameBytes) break;
        payloads.push(out.bytes);
        bytes += out.bytes.length;
        flows += out.flows;
      }
      const last = first + payloads.length - 1;
      if (first <= this.maxWrittenSeq) this.counters.payloadsResent += Math.min(last, this.maxWrittenSeq) - first + 1;
      this.maxWrittenSeq = Math.max(this.maxWrittenSeq, last);
      this.sendSeq = last + 1;
      this.counters.payloadsSent += payloads.length;
      this.counters.flowsSent += flows;
      this.ackOwed = false;
      this.write(stream, encodeFrame({ ack: this.lastReceived, firstSeq: first, payloads }));
    }
    if (this.ackOwed && !this.blocked) {
      this.ackOwed = false;
      this.write(stream, encodeFrame({ ack: this.lastReceived, firstSeq: 0, payloads: [] }));
    }
  }

  private write(stream: FrameStream, frame: Buffer): void {
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    if (stream.write(frame)) return;
    this.blocked = true;
    stream.once('drain', () => {
      if (this.stream !== stream) return;
      this.blocked = false;
      this.scheduleFlush();
    });
  }
}
