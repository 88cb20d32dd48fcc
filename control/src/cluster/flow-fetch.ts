// Trigger e: a packet of a flow this node owns arrives mid-stream but the
// node has no entry (the data plane punts it as EV_FLOW_MISS), e.g. while an
// ownership change propagates. The packet is held (copied; a bounded number
// for a bounded time), the flow is requested from the bucket's backups and,
// if they do not have it, from every live peer; the first answer is
// installed and the held packets are re-injected through the data plane.
// Packets of a flow nobody has, or that got no answer in time, are dropped
// and counted.
//
// Misses are rare (ownership changes), so this keeps a small JS object per
// missing flow while it is held.
import { FLOW_KEY_SIZE, flowKey, puntMeta, type FlowKey } from '../bpf/codec.js';
import type { Logger } from '../log.js';
import { bucketOf } from './bucket.js';
import type { ClusterStats } from './cluster-stats.js';
import { FlowRecords } from './flow-records.js';
import type { Ownership } from './ownership.js';
import type { SyncPayload } from './types.js';

export interface FetchClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: FetchClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface FlowFetchDeps {
  selfId: number;
  current(): Ownership;
  livePeers(): readonly number[];
  send(to: number, payload: SyncPayload): number;
  nextRequestId(): number;
  /** Installs fetched entries (the replica store: this node has no entry, so they go in). */
  install(records: FlowRecords): void;
  reinject(frame: Uint8Array, ifindex: number): void;
  stats: ClusterStats;
  log: Logger;
  clock: FetchClock;
  /** Frames held at once, over all flows. */
  maxHeld: number;
  /** A held frame is dropped after this long without an answer. */
  holdMs: number;
  /** Peers outside the bucket's group are asked after this long (or once the group answered empty). */
  escalateMs: number;
}

interface HeldFlow {
  key: FlowKey;
  frames: { frame: Uint8Array; ifindex: number }[];
  asked: Set<number>;
  /** Asked peers that have not answered yet. */
  waiting: Set<number>;
  escalated: boolean;
  timers: unknown[];
}

interface Request {
  peer: number;
  keys: string[];
}

const keyId = (buf: Uint8Array, off: number): string => Buffer.from(buf.buffer, buf.byteOffset + off, FLOW_KEY_SIZE).toString('hex');

export class FlowFetcher {
  private readonly d: FlowFetchDeps;
  private readonly held = new Map<string, HeldFlow>();
  private readonly requests = new Map<number, Request>();
  /** Keys to ask each peer for on the next flush. */
  private readonly toAsk = new Map<number, string[]>();
  private heldFrames = 0;

  constructor(deps: FlowFetchDeps) {
    this.d = deps;
  }

  /** Frames held now (for status and tests). */
  get heldCount(): number {
    return this.heldFrames;
  }

  /** An EV_FLOW_MISS punt record; buf[off..] is valid only during the call. */
  onMiss(buf: Uint8Array, off: number): void {
    const { stats } = this.d;
    if (this.heldFrames >= this.d.maxHeld) {
      stats.add('fetch_held_full');
      stats.add('fetch_frames_dropped');
      return;
    }
    const keyOff = puntMeta.keyOffset(off);
    const dataOff = puntMeta.dataOffset(off);
    const frame = buf.slice(dataOff, dataOff + puntMeta.capLen(buf, off));
    const ifindex = puntMeta.ifindex(buf, off);
    const id = keyId(buf, keyOff);
    this.heldFrames++;
    const existing = this.held.get(id);
    if (existing) {
      existing.frames.push({ frame, ifindex });
      return;
    }
    const flow: HeldFlow = {
      key: flowKey.read(buf.subarray(keyOff, keyOff + FLOW_KEY_SIZE), 0),
      frames: [{ frame, ifindex }],
      asked: new Set(),
      waiting: new Set(),
      escalated: false,
      timers: [],
    };
    this.held.set(id, flow);
    stats.add('fetch_requests');
    const group = this.groupPeers(bucketOf(buf, keyOff));
    if (group.length === 0) this.escalate(id, flow);
    else {
      for (const peer of group) this.queueAsk(peer, id, flow);
      flow.timers.push(this.d.clock.setTimeout(() => this.escalate(id, flow), this.d.escalateMs));
    }
    flow.timers.push(this.d.clock.setTimeout(() => this.giveUp(id, 'fetch_timeout'), this.d.holdMs));
  }

  /** Sends the requests gathered since the last flush: one per peer. */
  flush(): void {
    for (const [peer, keys] of this.toAsk) {
      const requestId = this.d.nextRequestId();
      this.requests.set(requestId, { peer, keys });
      const flows = keys.flatMap((id) => {
        const flow = this.held.get(id);
        return flow ? [flow.key] : [];
      });
      this.d.send(peer, { kind: 'request', requestId, flows });
    }
    this.toAsk.clear();
  }

  /** A bulk answer; returns false if it answers no request of ours. */
  onBulk(from: number, requestId: number, entries: FlowRecords, last: boolean): boolean {
    const request = this.requests.get(requestId);
    if (!request || request.peer !== from) return false;
    const useful = new FlowRecords();
    const ids: string[] = [];
    for (let i = 0; i < entries.length; i++) {
      const id = keyId(entries.keys, i * FLOW_KEY_SIZE);
      if (!this.held.has(id)) continue;
      useful.addRecord(entries, i);
      ids.push(id);
    }
    if (useful.length > 0) {
      this.d.install(useful);
      for (const id of ids) this.resolve(id);
    }
    if (!last) return true;
    this.requests.delete(requestId);
    for (const id of request.keys) {
      const flow = this.held.get(id);
      if (!flow) continue;
      flow.waiting.delete(from);
      if (flow.waiting.size > 0) continue;
      if (!flow.escalated) this.escalate(id, flow);
      else this.giveUp(id, 'fetch_not_found');
    }
    this.flush();
    return true;
  }

  /** Drops everything held (shutdown). */
  close(): void {
    for (const id of [...this.held.keys()]) this.giveUp(id, 'fetch_timeout');
    this.requests.clear();
    this.toAsk.clear();
  }

  private groupPeers(bucket: number): number[] {
    const o = this.d.current();
    const out: number[] = [];
    for (let i = 0; i < o.groupSize; i++) {
      const n = o.groupMember(bucket, i);
      if (n !== this.d.selfId) out.push(n);
    }
    return out;
  }

  private queueAsk(peer: number, id: string, flow: HeldFlow): void {
    flow.asked.add(peer);
    flow.waiting.add(peer);
    let keys = this.toAsk.get(peer);
    if (!keys) this.toAsk.set(peer, (keys = []));
    keys.push(id);
  }

  /** Asks every live peer not asked yet; gives up when there is nobody left to ask or wait for. */
  private escalate(id: string, flow: HeldFlow): void {
    if (this.held.get(id) !== flow || flow.escalated) return;
    flow.escalated = true;
    for (const peer of this.d.livePeers()) if (peer !== this.d.selfId && !flow.asked.has(peer)) this.queueAsk(peer, id, flow);
    if (flow.waiting.size === 0) this.giveUp(id, 'fetch_not_found');
    else this.flush();
  }

  private resolve(id: string): void {
    const flow = this.held.get(id);
    if (!flow) return;
    this.release(id, flow);
    this.d.stats.add('fetch_ok');
    for (const { frame, ifindex } of flow.frames) {
      try {
        this.d.reinject(frame, ifindex);
        this.d.stats.add('fetch_frames_reinjected');
      } catch (err) {
        this.d.stats.add('fetch_frames_dropped');
        this.d.log.warn({ err }, 're-injecting a packet held for a flow fetch failed');
      }
    }
  }

  private giveUp(id: string, reason: 'fetch_timeout' | 'fetch_not_found'): void {
    const flow = this.held.get(id);
    if (!flow) return;
    this.release(id, flow);
    this.d.stats.add(reason);
    this.d.stats.add('fetch_frames_dropped', flow.frames.length);
  }

  private release(id: string, flow: HeldFlow): void {
    for (const t of flow.timers) this.d.clock.clearTimeout(t);
    this.held.delete(id);
    this.heldFrames -= flow.frames.length;
  }
}
