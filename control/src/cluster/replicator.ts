// Sends this node's authoritative entries (those of buckets it owns) to the
// nodes that must hold them:
//
// - on demand (trigger a): every state change the data plane reports, and
//   every removal, is queued as a 40-byte key; on the next turn of the event
//   loop (setImmediate, well under 1 ms) the current entries are read and
//   sent, batched per peer;
// - the periodic differential pass: every interval, entries of owned buckets
//   whose last_seen moved since the previous pass (windows, counters,
//   last_seen change on every packet and are synced only at this bounded
//   rate); the first pass of a class is a full one;
// - re-replication (triggers b, c, d): after an ownership change, the
//   entries of every bucket whose group gained nodes go to those nodes.
//
// Node-specific entries go to the bucket's backup group, common ones
// (FLOW_F_COMMON) to every live peer. Nothing is kept per connection: the
// table is the state, read in batches when something is sent.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey, type StateEvent } from '../bpf/codec.js';
import type { ConnTable } from '../bpf/conn-table.js';
import type { RemovalReason } from '../engine/flow-events.js';
import { FlowFlag } from '../gen/layout.js';
import type { Logger } from '../log.js';
import { bucketOf, SW_BUCKETS } from './bucket.js';
import type { ClusterStats } from './cluster-stats.js';
import { ClockReading } from './flow-records.js';
import { Outbox, type SendFn } from './outbox.js';
import type { Ownership } from './ownership.js';
import type { SyncModes } from './sync-modes.js';
import type { StateClass } from './types.js';

export type ReplicatorTable = Pick<ConnTable, 'lookupRaw' | 'scanChunks'>;

/** What replication needs to know about the cluster right now. */
export interface ReplicationView {
  readonly selfId: number;
  /** The ownership in force; this node replicates the buckets it owns in it. */
  current(): Ownership;
  /**
   * The ownership about to take over, while this node drains: its groups get
   * on-demand updates too, so changes made during the hand-over reach the
   * new owners.
   */
  next(): Ownership | undefined;
  /** Peers that receive common state. */
  livePeers(): readonly number[];
}

export interface ReplicatorDeps {
  table: ReplicatorTable;
  view: ReplicationView;
  modes: SyncModes;
  send: SendFn;
  /** Resolves when the peer's send queue can take more: re-replication is a bulk transfer and waits for it. */
  waitForRoom(to: number): Promise<void>;
  stats: ClusterStats;
  log: Logger;
  monotonicNs(): bigint;
  /** The data plane refreshes last_seen at most this often: the differential pass looks back this much further. */
  lastSeenGranularityNs: bigint;
  /** Entries per table batch. */
  chunk: number;
  /** Keys queued for the next on-demand flush before it is forced. */
  queueCapacity: number;
}

/**
 * Fills `out` with the peers that must hold an entry of bucket b: the
 * bucket's group (owner and backups, minus this node) in every given
 * ownership, or every live peer for common state. Returns out.
 */
export function replicationTargets(
  b: number,
  common: boolean,
  selfId: number,
  ownerships: readonly (Ownership | undefined)[],
  livePeers: readonly number[],
  out: number[],
): number[] {
  out.length = 0;
  if (common) {
    for (const p of livePeers) if (p !== selfId) out.push(p);
    return out;
  }
  for (const o of ownerships) {
    if (!o) continue;
    for (let i = 0; i < o.groupSize; i++) {
      const n = o.groupMember(b, i);
      if (n !== selfId && !out.includes(n)) out.push(n);
    }
  }
  return out;
}

/**
 * Per bucket, the peers that should receive its entries after the ownership
 * changed from `before` to `after`: nodes in the bucket's new group that were
 * not in its old one, for the buckets this node is the source of (it owns
 * them now, or owned them and hands them off). Empty lists for the rest.
 */
export function gainedTargets(before: Ownership, after: Ownership, selfId: number): number[][] {
  const out: number[][] = [];
  for (let b = 0; b < SW_BUCKETS; b++) {
    const targets: number[] = [];
    if (after.owner[b] === selfId || before.owner[b] === selfId) {
      for (let i = 0; i < after.groupSize; i++) {
        const n = after.groupMember(b, i);
        if (n !== selfId && !before.inGroup(b, n)) targets.push(n);
      }
    }
    out.push(targets);
  }
  return out;
}

const classOf = (flags: number): StateClass => ((flags & FlowFlag.FLOW_F_COMMON) !== 0 ? 'common' : 'node');

/**
 * replicationTargets per bucket for one flush or table chunk, each computed
 * once: ownerships and live peers are fixed meanwhile, and a burst has many
 * entries per bucket.
 */
class TargetsByBucket {
  private readonly node: (number[] | undefined)[] = [];
  private common: number[] | undefined;

  constructor(
    private readonly selfId: number,
    private readonly ownerships: readonly (Ownership | undefined)[],
    private readonly livePeers: readonly number[],
  ) {}

  of(b: number, common: boolean): readonly number[] {
    if (common) return (this.common ??= replicationTargets(b, true, this.selfId, this.ownerships, this.livePeers, []));
    return (this.node[b] ??= replicationTargets(b, false, this.selfId, this.ownerships, this.livePeers, []));
  }
}

export class Replicator {
  private readonly d: ReplicatorDeps;
  private readonly pendingKeys: Uint8Array;
  /** pendingKeys[i * FLOW_KEY_SIZE] as its own view, made once: a map lookup per key allocates nothing. */
  private readonly pendingKeyViews: Uint8Array[];
  private readonly pendingRemoves: Uint8Array;
  private readonly pendingRemoveFlags: Uint8Array;
  private pendingChanged = 0;
  private pendingRemoved = 0;
  private flushScheduled: NodeJS.Immediate | undefined;
  private readonly value = new Uint8Array(FLOW_ENTRY_SIZE);
  /** Start of the previous pass that included the class (0: the next pass is full). */
  private readonly lastPassNs: Record<StateClass, bigint> = { node: 0n, common: 0n };

  constructor(deps: ReplicatorDeps) {
    this.d = deps;
    this.pendingKeys = new Uint8Array(deps.queueCapacity * FLOW_KEY_SIZE);
    this.pendingKeyViews = Array.from({ length: deps.queueCapacity }, (_, i) => this.pendingKeys.subarray(i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE));
    this.pendingRemoves = new Uint8Array(deps.queueCapacity * FLOW_KEY_SIZE);
    this.pendingRemoveFlags = new Uint8Array(deps.queueCapacity);
  }

  /** FlowEventListener: a flow changed state in the data plane. */
  stateChanged(ev: StateEvent): void {
    if (!this.d.modes.onDemand(classOf(ev.flags))) return;
    if (this.pendingChanged === this.d.queueCapacity) this.flush();
    const off = this.pendingChanged * FLOW_KEY_SIZE;
    flowKey.write(this.pendingKeys, off, ev.key);
    if (this.d.view.current().owner[bucketOf(this.pendingKeys, off)] !== this.d.view.selfId) return;
    this.pendingChanged++;
    this.schedule();
  }

  /** FlowEventListener: the controller removed a flow (expiry, flush, recheck); flags are the entry's. */
  removed(key: Uint8Array, _reason: RemovalReason, flags: number): void {
    // A pass cannot notice an entry that is gone, so removals go out in every mode but off.
    if (!this.d.modes.enabled(classOf(flags))) return;
    if (this.d.view.current().owner[bucketOf(key, 0)] !== this.d.view.selfId) return;
    if (this.pendingRemoved === this.d.queueCapacity) this.flush();
    this.pendingRemoves.set(key.subarray(0, FLOW_KEY_SIZE), this.pendingRemoved * FLOW_KEY_SIZE);
    this.pendingRemoveFlags[this.pendingRemoved++] = flags;
    this.schedule();
  }

  /** Sends what the on-demand queue holds: current entries of changed flows, removals. */
  flush(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    const { view, stats, table } = this.d;
    const outbox = new Outbox(this.d.send, new ClockReading(this.d.monotonicNs()), this.pendingChanged);
    const targets = new TargetsByBucket(view.selfId, [view.current(), view.next()], view.livePeers());
    for (let i = 0; i < this.pendingChanged; i++) {
      const kOff = i * FLOW_KEY_SIZE;
      // Gone since (removed): its removal follows.
      if (!table.lookupRaw(this.pendingKeyViews[i]!, this.value)) continue;
      const cls = classOf(flowEntry.flags(this.value, 0));
      const to = targets.of(bucketOf(this.pendingKeys, kOff), cls === 'common');
      for (const peer of to) outbox.addEntry(peer, cls, this.pendingKeys, kOff, this.value, 0);
      stats.add(cls === 'common' ? 'entries_sent_common_on_demand' : 'entries_sent_node_on_demand', to.length);
    }
    for (let i = 0; i < this.pendingRemoved; i++) {
      const kOff = i * FLOW_KEY_SIZE;
      const common = (this.pendingRemoveFlags[i]! & FlowFlag.FLOW_F_COMMON) !== 0;
      const to = targets.of(bucketOf(this.pendingRemoves, kOff), common);
      for (const peer of to) outbox.addRemove(peer, this.pendingRemoves, kOff);
      stats.add('removes_sent', to.length);
    }
    this.pendingChanged = 0;
    this.pendingRemoved = 0;
    outbox.flush();
  }

  /** One differential pass over the table (full for a class whose previous pass is unknown). */
  async periodicPass(): Promise<void> {
    const { view, modes, stats } = this.d;
    const start = this.d.monotonicNs();
    const since: Record<StateClass, number> = { node: Infinity, common: Infinity };
    for (const cls of ['node', 'common'] as const) {
      if (!modes.periodic(cls)) {
        this.lastPassNs[cls] = 0n;
        continue;
      }
      const last = this.lastPassNs[cls];
      since[cls] = last === 0n ? -Infinity : Number(last - this.d.lastSeenGranularityNs);
      this.lastPassNs[cls] = start;
    }
    if (since.node === Infinity && since.common === Infinity) return;
    stats.add('periodic_passes');
    await this.d.table.scanChunks(this.d.chunk, (keys, values, count) => {
      const outbox = new Outbox(this.d.send, new ClockReading(this.d.monotonicNs()), count);
      const ownership = view.current();
      const targets = new TargetsByBucket(view.selfId, [ownership, view.next()], view.livePeers());
      for (let i = 0; i < count; i++) {
        const kOff = i * FLOW_KEY_SIZE;
        const vOff = i * FLOW_ENTRY_SIZE;
        const b = bucketOf(keys, kOff);
        if (ownership.owner[b] !== view.selfId) continue;
        const cls = classOf(flowEntry.flags(values, vOff));
        if (flowEntry.lastSeenNs(values, vOff) < since[cls]) continue;
        const to = targets.of(b, cls === 'common');
        for (const peer of to) outbox.addEntry(peer, cls, keys, kOff, values, vOff);
        stats.add(cls === 'common' ? 'entries_sent_common_periodic' : 'entries_sent_node_periodic', to.length);
      }
      return this.paced(outbox.flush());
    });
  }

  /**
   * After an ownership change: sends the node-specific entries of each
   * bucket to the nodes its group gained (see gainedTargets). For a peer in
   * `servedSince` (it received this bucket set in a join bulk at that time),
   * only entries seen since then go out. Returns the last seq per peer.
   */
  async rereplicate(before: Ownership, after: Ownership, servedSince: ReadonlyMap<number, bigint> = new Map()): Promise<Map<number, number>> {
    const lastSeq = new Map<number, number>();
    if (!this.d.modes.enabled('node')) return lastSeq;
    const gained = gainedTargets(before, after, this.d.view.selfId);
    if (gained.every((t) => t.length === 0)) return lastSeq;
    const since = new Map<number, number>();
    for (const [peer, ns] of servedSince) since.set(peer, Number(ns - this.d.lastSeenGranularityNs));
    await this.d.table.scanChunks(this.d.chunk, (keys, values, count) => {
      const outbox = new Outbox(this.d.send, new ClockReading(this.d.monotonicNs()), count);
      for (let i = 0; i < count; i++) {
        const kOff = i * FLOW_KEY_SIZE;
        const vOff = i * FLOW_ENTRY_SIZE;
        const targets = gained[bucketOf(keys, kOff)]!;
        if (targets.length === 0 || classOf(flowEntry.flags(values, vOff)) === 'common') continue;
        const lastSeen = flowEntry.lastSeenNs(values, vOff);
        for (const peer of targets) {
          if (lastSeen < (since.get(peer) ?? -Infinity)) continue;
          outbox.addEntry(peer, 'node', keys, kOff, values, vOff);
          this.d.stats.add('entries_rereplicated');
        }
      }
      const flushed = outbox.flush();
      for (const [peer, seq] of flushed) lastSeq.set(peer, seq);
      return this.paced(flushed);
    });
    return lastSeq;
  }

  /**
   * A table walk's next chunk waits until the peers it just sent to have
   * room: a pass over a large table (a node's share of a million entries)
   * would otherwise fill their queues faster than they ack, and a full
   * queue drops its oldest payloads.
   */
  private paced(flushed: ReadonlyMap<number, number>): Promise<boolean> {
    return Promise.all([...flushed.keys()].map((peer) => this.d.waitForRoom(peer))).then(() => true);
  }

  /** Drops what is queued (shutdown). */
  close(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    this.pendingChanged = 0;
    this.pendingRemoved = 0;
  }

  private schedule(): void {
    this.flushScheduled ??= setImmediate(() => {
      this.flushScheduled = undefined;
      try {
        this.flush();
      } catch (err) {
        this.d.log.error({ err }, 'on-demand replication failed');
      }
    });
  }
}
