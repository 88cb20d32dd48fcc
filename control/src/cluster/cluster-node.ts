// One node of a syncwall cluster: ties the transport, membership, ownership,
// replication, state requests and flow fetches together and drives the
// life cycle (docs/CLUSTER.md):
//
//   joining  — owns nothing; asks the active peers for common state and the
//              buckets it will own or back up (trigger c), installs them
//   active   — owns its share of buckets; replicates (trigger a); on every
//              membership change rewrites the owner array first (that is
//              the whole failover), then re-replicates (trigger b)
//   draining — pushes its buckets to the nodes taking over, waits for their
//              acks, hands over, stops forwarding (trigger d)
//
// Flow misses of owned buckets are fetched from peers (trigger e).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ClusterStatusView, DrainResult, PeerView } from '../api/backend.js';
import { PreconditionError } from '../api/errors.js';
import type { ConnTable } from '../bpf/conn-table.js';
import type { FrameInjector } from '../bpf/inject.js';
import type { ClusterConfig } from '../config/schema.js';
import type { FlowEventFeed } from '../engine/flow-events.js';
import type { CommonStateChannel, SharedExpectations } from '../helpers/expectation-sync.js';
import type { Logger } from '../log.js';
import { ClusterStats } from './cluster-stats.js';
import { ClusterMaps, interfaceMac, type ClusterMapFds } from './datapath-cluster.js';
import { FlowFetcher, realClock } from './flow-fetch.js';
import type { FlowRecords } from './flow-records.js';
import { JoinTransfer } from './join.js';
import { Membership } from './membership.js';
import { computeOwnership, type Ownership } from './ownership.js';
import { ReplicaStore } from './replica-store.js';
import { Replicator } from './replicator.js';
import { StateServer } from './state-server.js';
import { SyncModes } from './sync-modes.js';
import { PeerTransport, type TransportEvents, type TransportOptions } from './transport.js';
import type { NodeState, StateClass, SyncMode, SyncPayload } from './types.js';

/** The part of PeerTransport the node uses (a test can run nodes over an in-process transport). */
export type Transport = Pick<PeerTransport, 'start' | 'stop' | 'setLocalState' | 'send' | 'waitForRoom' | 'waitAcked' | 'peers' | 'stats'>;

export interface ClusterNodeDeps {
  config: ClusterConfig;
  /** Attached interfaces: cluster addresses are answered on them, their MACs go to sw_ifaces. */
  interfaces: readonly { name: string; ifindex: number }[];
  maps: ClusterMapFds;
  table: ConnTable;
  injector: Pick<FrameInjector, 'reinject'>;
  events: FlowEventFeed;
  log: Logger;
  monotonicNs(): bigint;
  lastSeenGranularityNs: bigint;
  /** Entries per table batch. */
  chunk: number;
  transport?: (opts: TransportOptions, events: TransportEvents) => Transport;
}

/**
 * A joining node waits for its bulk answers as long as they keep arriving
 * (a million entries take minutes on a small machine); after this long
 * without a chunk it becomes active anyway.
 */
const JOIN_STALL_MS = 30_000;
/** Rounds of a join whose answering peers keep failing before the node goes active with what it has. */
const JOIN_MAX_ROUNDS = 5;
/** Held packets of flows being fetched, and how long they are held. */
const FETCH_MAX_HELD = 1024;
const FETCH_HOLD_MS = 50;
const FETCH_ESCALATE_MS = 10;
/**
 * Periodic passes after a membership change that prune again: a peer that
 * applied the change a moment later may still have sent us replicas under
 * the old groups after our first prune, and nothing else would drop them.
 */
const PRUNE_PASSES_AFTER_CHANGE = 3;
/** The controller's lease runs this many failure timeouts (see renewLease). */
const LEASE_FAILURE_TIMEOUTS = 2;
/** Changed flows queued between on-demand flushes. */
const QUEUE_CAPACITY = 8192;

export class ClusterNode {
  readonly stats = new ClusterStats();
  private readonly d: ClusterNodeDeps;
  private readonly cfg: ClusterConfig;
  private readonly log: Logger;
  private readonly membership: Membership;
  private readonly modes: SyncModes;
  private readonly transport: Transport;
  private readonly maps: ClusterMaps;
  private readonly replicas: ReplicaStore;
  private readonly replicator: Replicator;
  private readonly server: StateServer;
  private readonly fetcher: FlowFetcher;
  private ownership: Ownership;
  /** While draining: the ownership that takes over (its groups get updates too). */
  private drainTarget: Ownership | undefined;
  private requestIds = 0;
  /** The state transfer while joining. */
  private joining: JoinTransfer | undefined;
  /** Peers that fetched a bucket set from us while joining, and when: later re-replication sends them only what changed since. */
  private readonly servedJoins = new Map<number, bigint>();
  private expectations: SharedExpectations | undefined;
  private periodic: NodeJS.Timeout | undefined;
  private leaseRenewal: NodeJS.Timeout | undefined;
  /** When the lease last written runs out (monotonic ns; 0: none yet). */
  private leaseExpiresNs = 0n;
  private passRunning: Promise<void> | undefined;
  private prunePassesLeft = 0;
  private stopped = false;

  constructor(deps: ClusterNodeDeps) {
    this.d = deps;
    this.cfg = deps.config;
    this.log = deps.log.child({ cluster: deps.config.id, node: deps.config.nodeId });
    const self = this.cfg.nodeId;
    this.membership = new Membership(self, this.cfg.peers.map((p) => p.id));
    this.modes = new SyncModes({ node: this.cfg.sync.node, common: this.cfg.sync.common });
    this.ownership = computeOwnership([], this.cfg.mode, this.cfg.backups);
    this.maps = new ClusterMaps(deps.maps, self, deps.monotonicNs);
    const send = (to: number, payload: SyncPayload): number => this.transport.send(to, payload);
    const waitForRoom = (to: number): Promise<void> => this.transport.waitForRoom(to);
    const current = (): Ownership => this.ownership;
    this.replicas = new ReplicaStore({
      table: deps.table,
      ownsBucket: (b) => this.ownership.owner[b] === self,
      stats: this.stats,
      monotonicNs: deps.monotonicNs,
      chunk: deps.chunk,
    });
    this.replicator = new Replicator({
      table: deps.table,
      view: { selfId: self, current, next: () => this.drainTarget, livePeers: () => this.membership.livePeers() },
      modes: this.modes,
      send,
      waitForRoom,
      stats: this.stats,
      log: this.log,
      monotonicNs: deps.monotonicNs,
      lastSeenGranularityNs: deps.lastSeenGranularityNs,
      chunk: deps.chunk,
      queueCapacity: QUEUE_CAPACITY,
    });
    this.server = new StateServer({ table: deps.table, selfId: self, current, send, waitForRoom, stats: this.stats, monotonicNs: deps.monotonicNs, chunk: deps.chunk });
    this.fetcher = new FlowFetcher({
      selfId: self,
      current,
      livePeers: () => this.membership.livePeers(),
      send,
      nextRequestId: () => ++this.requestIds,
      install: (records) => this.replicas.install(records),
      reinject: (frame, ifindex) => deps.injector.reinject(frame, ifindex),
      stats: this.stats,
      log: this.log,
      clock: realClock,
      maxHeld: FETCH_MAX_HELD,
      holdMs: FETCH_HOLD_MS,
      escalateMs: FETCH_ESCALATE_MS,
    });
    const transportOptions: TransportOptions = {
      clusterId: this.cfg.id,
      nodeId: self,
      incarnation: randomBytes(8).toString('hex'),
      listen: this.cfg.listen,
      peers: this.cfg.peers,
      tls: { ca: readFileSync(this.cfg.tls.ca), cert: readFileSync(this.cfg.tls.cert), key: readFileSync(this.cfg.tls.key) },
      heartbeatMs: this.cfg.heartbeatMs,
      failureTimeoutMs: this.cfg.failureTimeoutMs,
      log: this.log,
    };
    // The transport may still deliver a peer's hello or message after stop()
    // (gRPC callbacks already queued); the daemon closes the maps right after,
    // so a stopped node ignores them instead of writing to closed maps.
    const events: TransportEvents = {
      peerState: (id, state, incarnation) => {
        if (!this.stopped) this.onPeerState(id, state, incarnation);
      },
      message: (from, payload) => {
        if (!this.stopped) this.onMessage(from, payload);
      },
    };
    this.transport = (deps.transport ?? ((o, e) => new PeerTransport(o, e)))(transportOptions, events);
    deps.events.subscribe(this.replicator);
  }

  /**
   * Fills the cluster maps (owning nothing yet), starts the transport, joins
   * and becomes active. Resolves once active.
   */
  async start(): Promise<void> {
    this.maps.writeOwners(this.ownership.owner);
    this.renewLease();
    this.leaseRenewal = setInterval(() => this.renewLease(), this.cfg.heartbeatMs);
    const onIface = new Map(this.d.interfaces.map((i) => [i.name, i.ifindex]));
    this.maps.writeAddresses(this.cfg.addresses.map((a) => ({ ifindex: onIface.get(a.interface)!, address: a.address })));
    this.maps.writeInterfaces(this.d.interfaces.map((i) => ({ ifindex: i.ifindex, mac: interfaceMac(i.name) })));
    this.transport.setLocalState('joining');
    await this.transport.start();
    this.log.info({ listen: this.cfg.listen, peers: this.cfg.peers.length, mac: this.cfg.mac }, 'cluster sync started; joining');
    await this.waitForPeers();
    if (this.stopped) return;
    await this.join();
    if (this.stopped) return;
    this.membership.setSelfState('active');
    this.transport.setLocalState('active');
    this.applyMembership();
    this.periodic = setInterval(() => this.runPeriodicPass(), this.cfg.sync.periodicIntervalMs);
    this.log.info({ members: this.ownership.members, owned: this.ownership.ownedCount(this.cfg.nodeId) }, 'cluster node active');
  }

  /** An EV_FLOW_MISS record from the punt ring (valid during the call). */
  onFlowMiss(buf: Uint8Array, off: number): void {
    this.fetcher.onMiss(buf, off);
  }

  /** End of a punt-ring batch: send the flow requests gathered. */
  flushFlowMisses(): void {
    this.fetcher.flush();
  }

  /** Common state kept outside the connection table (helper expectations): sent to every live peer at once. */
  commonChannel(): CommonStateChannel {
    return {
      livePeers: () => this.membership.livePeers(),
      commonSyncOff: () => !this.modes.enabled('common'),
      send: (to, payload) => this.transport.send(to, payload),
      waitAcked: (to, seq, timeoutMs) => this.transport.waitAcked(to, seq, timeoutMs),
    };
  }

  /** Expectations peers create or remove are applied to `shared` (the engine's helper runner); joining peers get its live ones. */
  shareExpectations(shared: SharedExpectations): void {
    this.expectations = shared;
  }

  status(): ClusterStatusView {
    const self = this.cfg.nodeId;
    return {
      clusterId: this.cfg.id,
      nodeId: self,
      state: this.membership.state,
      mode: this.cfg.mode,
      backups: this.cfg.backups,
      syncNode: this.modes.get('node'),
      syncCommon: this.modes.get('common'),
      members: [...this.ownership.members],
      bucketsOwned: this.ownership.ownedCount(self),
      bucketsBackedUp: this.ownership.backedUpCount(self),
    };
  }

  peers(): PeerView[] {
    return this.transport.peers().map((p) => ({ ...p, bucketsOwned: this.ownership.ownedCount(p.id) }));
  }

  setSyncMode(cls: StateClass, mode: SyncMode): SyncMode {
    const previous = this.modes.set(cls, mode);
    this.log.info({ class: cls, mode, previous }, 'sync mode changed');
    return previous;
  }

  /** Cluster and transport counters (transport ones prefixed transport_). */
  counters(): Record<string, bigint> {
    const out = this.stats.snapshot();
    for (const [name, value] of Object.entries(this.transport.stats())) out[`transport_${name}`] = value;
    return out;
  }

  /**
   * Trigger d: pushes the entries of the buckets this node owns to the nodes
   * taking them over, waits for their acks, hands the buckets over and stops
   * forwarding. The node stays up, draining, owning nothing.
   */
  async drain(timeoutMs: number): Promise<DrainResult> {
    if (this.membership.state !== 'active') throw new PreconditionError(`node ${this.cfg.nodeId} is ${this.membership.state}, not active`);
    const started = performance.now();
    const deadline = started + timeoutMs;
    const remaining = (): number => Math.max(0, deadline - performance.now());
    this.membership.setSelfState('draining');
    this.transport.setLocalState('draining');
    const before = this.ownership;
    this.drainTarget = computeOwnership(this.membership.membersWithoutSelf(), this.cfg.mode, this.cfg.backups);
    const pushedBefore = this.stats.get('entries_rereplicated');
    const lastSeq = await this.replicator.rereplicate(before, this.drainTarget);
    this.replicator.flush();
    let acked = await this.allAcked(lastSeq, remaining());
    const owned = before.ownedCount(this.cfg.nodeId);
    const buckets = Array.from(before.owner.keys()).filter((b) => before.owner[b] === this.cfg.nodeId);
    const handovers = new Map<number, number>();
    for (const peer of this.membership.livePeers()) handovers.set(peer, this.transport.send(peer, { kind: 'handover', buckets }));
    this.stats.add('handovers_sent', handovers.size);
    acked = (await this.allAcked(handovers, remaining())) && acked;
    this.membership.selfHandOver();
    this.drainTarget = undefined;
    this.applyMembership();
    const result = {
      bucketsHandedOver: owned,
      entriesPushed: this.stats.get('entries_rereplicated') - pushedBefore,
      acked,
      durationMs: Math.round(performance.now() - started),
    };
    this.log.info(result, 'drained: buckets handed over');
    return result;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.periodic);
    // The lease runs out on its own, one failure timeout after the peers declared this node failed.
    clearInterval(this.leaseRenewal);
    await this.passRunning;
    this.joining?.stop();
    this.replicator.close();
    this.fetcher.close();
    await this.transport.stop();
  }

  /**
   * The data plane serves the cluster for LEASE_FAILURE_TIMEOUTS failure
   * timeouts from now. It is renewed on the event loop that also sends the
   * heartbeats, so a dead controller's data plane stops one failure timeout
   * after its peers took its buckets over. The margin keeps a controller
   * that is merely starved of CPU for a moment (its data plane still
   * forwarding) from cutting its own connections: by the time its lease
   * runs out the peers serve them.
   */
  private renewLease(): void {
    const now = this.d.monotonicNs();
    if (this.leaseExpiresNs !== 0n && now >= this.leaseExpiresNs) {
      // Owner stamps first: no packet may see the renewed lease with its entries still trusted.
      this.maps.writeOwners(this.ownership.owner, true);
      this.stats.add('lease_lapses');
      this.log.warn({ lapsedMs: Number((now - this.leaseExpiresNs) / 1_000_000n) }, 'controller lease lapsed (event loop stalled): owned flows re-learn their windows');
    }
    this.leaseExpiresNs = now + BigInt(LEASE_FAILURE_TIMEOUTS * this.cfg.failureTimeoutMs) * 1_000_000n;
    this.maps.writeLease(this.leaseExpiresNs);
  }

  /** Waits until every configured peer has announced itself, or a few failure timeouts. */
  private async waitForPeers(): Promise<void> {
    const until = performance.now() + Math.max(2000, 5 * this.cfg.failureTimeoutMs);
    while (!this.stopped && !this.membership.allPeersHeard() && performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, this.cfg.heartbeatMs));
    }
  }

  /** Trigger c: bulk state from every active peer for what this node will own or back up (join.ts). */
  private async join(): Promise<void> {
    this.joining = new JoinTransfer({
      activePeers: () => this.membership.activePeers(),
      request: (peer, requestId) => {
        // what this node will serve once active, under the membership of this round
        const future = computeOwnership(this.membership.membersWithSelf(), this.cfg.mode, this.cfg.backups);
        this.transport.send(peer, { kind: 'request', requestId, common: true, buckets: future.bucketsServedBy(this.cfg.nodeId) });
        this.stats.add('join_requests_sent');
      },
      nextRequestId: () => ++this.requestIds,
      stallMs: JOIN_STALL_MS,
      returnGraceMs: Math.max(2000, 5 * this.cfg.failureTimeoutMs),
      maxRounds: JOIN_MAX_ROUNDS,
    });
    const outcome = await this.joining.run();
    const waitingFor = this.joining.waitingFor();
    this.joining = undefined;
    const received = this.stats.get('bulk_entries_received');
    if (outcome.complete) {
      if (outcome.rounds > 0) this.log.info({ rounds: outcome.rounds, received }, 'join: state received');
      return;
    }
    this.stats.add(outcome.reason === 'stalled' ? 'join_timeouts' : 'join_incomplete');
    this.log.warn({ reason: outcome.reason, rounds: outcome.rounds, waitingFor, stallMs: JOIN_STALL_MS, received }, 'join: state transfer incomplete; going active with what arrived');
  }

  private onPeerState(id: number, state: NodeState, incarnation: string): void {
    const change = this.membership.peerState(id, state, incarnation);
    if (change.restarted) {
      this.servedJoins.delete(id);
      this.log.info({ peer: id, incarnation }, 'peer restarted');
    }
    if (state === 'failed') this.joining?.onPeerFailed(id);
    if (state === 'active') this.joining?.onPeerActive();
    if (change.membersChanged) {
      this.log.info({ peer: id, state }, 'membership changed');
      this.applyMembership();
    }
  }

  private onMessage(from: number, payload: SyncPayload): void {
    switch (payload.kind) {
      case 'entries':
        this.stats.add('entries_received', payload.entries.length);
        this.replicas.install(payload.entries);
        return;
      case 'removes':
        this.stats.add('removes_received', payload.keys.length);
        this.replicas.remove(payload.keys);
        return;
      case 'request':
        if (payload.buckets) this.servedJoins.set(from, this.d.monotonicNs());
        if (payload.common) this.sendLiveExpectations(from);
        this.server.answer(from, payload).catch((err: unknown) => this.log.error({ err, peer: from }, 'answering a state request failed'));
        return;
      case 'bulk':
        if (this.fetcher.onBulk(from, payload.requestId, payload.entries, payload.last)) return;
        this.onJoinBulk(from, payload.requestId, payload.entries, payload.last);
        return;
      case 'expectations':
        this.expectations?.applyPeer(payload.add, payload.remove);
        return;
      case 'handover':
        this.stats.add('handovers_received');
        this.log.info({ peer: from, buckets: payload.buckets.length }, 'peer handed its buckets over');
        if (this.membership.peerHandedOver(from)) this.applyMembership();
        return;
    }
  }

  /**
   * A joining peer missed the creation of the expectations that are live
   * now: they go ahead of its bulk answer on the same ordered stream, so it
   * has them before it becomes active.
   */
  private sendLiveExpectations(to: number): void {
    if (!this.expectations || !this.modes.enabled('common')) return;
    const live = this.expectations.live();
    if (live.length === 0) return;
    this.transport.send(to, { kind: 'expectations', add: live, remove: [] });
    this.stats.add('join_expectations_sent', live.length);
  }

  private onJoinBulk(from: number, requestId: number, entries: FlowRecords, last: boolean): void {
    if (!this.joining?.onBulk(from, requestId, last)) return;
    this.stats.add('bulk_entries_received', entries.length);
    this.replicas.install(entries);
  }

  /**
   * Recomputes ownership from the members; if it changed, writes the owner
   * array at once (backups take over with this single write), then sends
   * each bucket's entries to the nodes its group gained.
   */
  private applyMembership(): void {
    const members = this.membership.members();
    if (members.join() === this.ownership.members.join()) return;
    const before = this.ownership;
    const after = computeOwnership(members, this.cfg.mode, this.cfg.backups);
    this.maps.writeOwners(after.owner);
    this.ownership = after;
    this.prunePassesLeft = PRUNE_PASSES_AFTER_CHANGE;
    this.stats.add('ownership_changes');
    const self = this.cfg.nodeId;
    this.log.info({ members, owned: after.ownedCount(self), backedUp: after.backedUpCount(self) }, 'bucket ownership changed');
    if (this.membership.state !== 'active') return;
    const served = new Map([...this.servedJoins].filter(([peer]) => members.includes(peer)));
    for (const peer of served.keys()) this.servedJoins.delete(peer);
    this.replicator
      .rereplicate(before, after, served)
      .then(() => this.pruneForeignEntries())
      .catch((err: unknown) => this.log.error({ err }, 're-replication failed'));
  }

  /** Once the new groups have their entries, drops ours of buckets we no longer serve. */
  private async pruneForeignEntries(): Promise<void> {
    if (this.stopped || this.drainTarget || this.membership.state !== 'active') return;
    const self = this.cfg.nodeId;
    // the ownership in force when each chunk is checked: it may change again mid-scan
    const pruned = await this.replicas.pruneOutside((b) => this.ownership.inGroup(b, self));
    if (pruned > 0) this.log.info({ pruned }, 'dropped entries of buckets this node no longer serves');
  }

  private runPeriodicPass(): void {
    if (this.passRunning || this.stopped) return;
    this.passRunning = this.replicator
      .periodicPass()
      .then(async () => {
        if (this.prunePassesLeft === 0) return;
        this.prunePassesLeft--;
        await this.pruneForeignEntries();
      })
      .catch((err: unknown) => this.log.error({ err }, 'periodic sync pass failed'))
      .finally(() => (this.passRunning = undefined));
  }

  private async allAcked(lastSeq: ReadonlyMap<number, number>, timeoutMs: number): Promise<boolean> {
    const results = await Promise.all([...lastSeq].map(([peer, seq]) => this.transport.waitAcked(peer, seq, timeoutMs)));
    return results.every(Boolean);
  }
}
