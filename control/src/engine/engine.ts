// The running controller: consumes both ring buffers, runs the first-packet
// pipeline, the protocol helpers and the expiry sweeper over the live data
// plane, and answers the management API.
import type {
  ClusterStatusView,
  ConnFilter,
  ConnView,
  DrainResult,
  ManagementBackend,
  PeerView,
  ReloadResult,
  StateClassName,
  StatsView,
  StatusView,
  SyncModeChange,
  SyncModeName,
} from '../api/backend.js';
import { PreconditionError } from '../api/errors.js';
import { FLOW_KEY_SIZE, flowEntry, flowKey, recordType, stateEvent } from '../bpf/codec.js';
import { ConnTable } from '../bpf/conn-table.js';
import { readCounters } from '../bpf/counters.js';
import type { Datapath } from '../bpf/datapath.js';
import { FrameInjector } from '../bpf/inject.js';
import { RingBufferConsumer } from '../bpf/ringbuf.js';
import { EventType, FlowFlag } from '../gen/layout.js';
import { ClusterExpectationSync, type CommonStateChannel, type SharedExpectations } from '../helpers/expectation-sync.js';
import { FtpHelper } from '../helpers/ftp-helper.js';
import { HeldFlag } from '../helpers/held-flag.js';
import { HelperRegistry } from '../helpers/helper.js';
import { DEFAULT_EXPECTATION_TTL_MS, HelperRunner } from '../helpers/helper-runner.js';
import type { Logger } from '../log.js';
import { CompiledFilter, toConnView } from './connection-view.js';
import { ControllerStats } from './controller-stats.js';
import { ExpirySweeper } from './expiry.js';
import { FirstPacketPipeline } from './first-packet.js';
import { echoRequestType, fillFlowQuery, newFlowQuery, type IngressInterface } from './flow-query.js';
import { FlowEventFeed } from './flow-events.js';
import { RejectSender } from './reject.js';
import type { RulesHolder } from './rules-holder.js';
import { TimeoutTable, type TimeoutSettings } from './timeouts.js';

export interface EngineSettings {
  nodeId: number;
  rulesFile: string;
  xdpMode: string;
  timeouts: TimeoutSettings;
  sweepIntervalMs: number;
  sweepChunk: number;
  /** Records handled per ring wakeup before yielding to the event loop. */
  ringBudget: number;
  maxPuntAgeMs: number;
  /** Protocol helpers (config `helpers:`). */
  helpers: { holdTimeoutMs: number };
  version: string;
}

export const monotonicNs = (): bigint => process.hrtime.bigint();

/** What the engine needs from cluster sync (cluster/cluster-node.ts) when the node is a cluster member. */
export interface EngineCluster {
  /** An EV_FLOW_MISS punt record (valid during the call). */
  onFlowMiss(buf: Uint8Array, off: number): void;
  /** End of a punt-ring batch. */
  flushFlowMisses(): void;
  status(): ClusterStatusView;
  peers(): PeerView[];
  setSyncMode(stateClass: StateClassName, mode: SyncModeName): SyncModeName;
  drain(timeoutMs: number): Promise<DrainResult>;
  counters(): Record<string, bigint>;
  /** Common state outside the connection table (helper expectations) goes to the peers through this. */
  commonChannel(): CommonStateChannel;
  /** Peers' expectation changes are applied to `shared`, and joining peers are sent its live ones. */
  shareExpectations(shared: SharedExpectations): void;
}

/**
 * What the engine uses of the loaded data plane: its map and program fds.
 * A Datapath in the daemon; the controller benchmark hands in the fds of an
 * object it loaded without attaching it anywhere.
 */
export type EngineDatapath = Pick<
  Datapath,
  | 'interfaces'
  | 'mainProgFd'
  | 'releaseProgFd'
  | 'txProgFd'
  | 'connsFd'
  | 'countersFd'
  | 'puntRingFd'
  | 'puntRingSize'
  | 'eventRingFd'
  | 'eventRingSize'
  | 'capacity'
>;

/** Bound of a drain asked for through the management API. */
const DRAIN_TIMEOUT_MS = 60_000;

export class Engine implements ManagementBackend {
  readonly events = new FlowEventFeed();
  readonly counters = new ControllerStats();
  private readonly dp: EngineDatapath;
  private readonly rules: RulesHolder;
  private readonly s: EngineSettings;
  private readonly log: Logger;
  private readonly table: ConnTable;
  private readonly pipeline: FirstPacketPipeline;
  private readonly helpers: HelperRunner;
  private readonly sweeper: ExpirySweeper;
  private readonly puntRing: RingBufferConsumer;
  private readonly eventRing: RingBufferConsumer;
  private readonly interfaces: Map<number, IngressInterface>;
  private readonly startedAt = Date.now();
  private cluster: EngineCluster | undefined;

  constructor(dp: EngineDatapath, rules: RulesHolder, settings: EngineSettings, log: Logger) {
    this.dp = dp;
    this.rules = rules;
    this.s = settings;
    this.log = log;
    this.table = new ConnTable(dp.connsFd, settings.ringBudget);
    this.interfaces = new Map(dp.interfaces.map((i) => [i.ifindex, { name: i.name, zone: i.zone }]));
    const injector = new FrameInjector(dp.mainProgFd, dp.txProgFd);
    // Released helper packets go through the program without the helper checks.
    const releaser = new FrameInjector(dp.releaseProgFd, dp.txProgFd);
    const heldFlag = new HeldFlag(dp.connsFd);
    this.helpers = new HelperRunner({
      lookupEntry: (key, value) => this.table.lookupRaw(key, value),
      release: (frame, ifindex) => releaser.reinject(frame, ifindex),
      unhold: (key) => heldFlag.clear(key),
      registry: new HelperRegistry([new FtpHelper()]),
      settings: { holdTimeoutMs: settings.helpers.holdTimeoutMs, expectationTtlMs: DEFAULT_EXPECTATION_TTL_MS },
      log,
      monotonicNs,
      nowMs: () => performance.now(),
    });
    this.events.subscribe(this.helpers);
    this.pipeline = new FirstPacketPipeline({
      table: this.table,
      injector,
      rejects: new RejectSender(injector, this.counters, log),
      rules,
      interfaces: this.interfaces,
      stats: this.counters,
      log,
      nodeId: settings.nodeId,
      maxPuntAgeNs: BigInt(settings.maxPuntAgeMs) * 1_000_000n,
      batchCapacity: settings.ringBudget,
      monotonicNs,
      related: this.helpers,
    });
    this.sweeper = new ExpirySweeper({
      table: this.table,
      timeouts: new TimeoutTable(settings.timeouts),
      events: this.events,
      stats: this.counters,
      log,
      intervalMs: settings.sweepIntervalMs,
      chunk: settings.sweepChunk,
      monotonicNs,
    });
    this.puntRing = new RingBufferConsumer({
      mapFd: dp.puntRingFd,
      size: dp.puntRingSize,
      budget: settings.ringBudget,
      onRecord: (buf, off) => {
        const type = recordType(buf, off);
        if (type === EventType.EV_PUNT) this.pipeline.onPunt(buf, off);
        else if (type === EventType.EV_HELPER) this.helpers.onPunt(buf, off);
        else if (type === EventType.EV_FLOW_MISS) this.cluster?.onFlowMiss(buf, off);
      },
      onBatchEnd: () => {
        this.pipeline.flush();
        this.cluster?.flushFlowMisses();
      },
      onError: (err) => log.error({ err }, 'punt ring consumer failed'),
    });
    this.eventRing = new RingBufferConsumer({
      mapFd: dp.eventRingFd,
      size: dp.eventRingSize,
      budget: settings.ringBudget,
      onRecord: (buf, off) => {
        this.counters.add('state_events');
        this.events.stateChanged(stateEvent.decode(buf, off));
      },
      onError: (err) => log.error({ err }, 'event ring consumer failed'),
    });
  }

  /** Makes this a cluster member: flow misses go to cluster sync, which also answers the cluster API calls. */
  attachCluster(cluster: EngineCluster): void {
    this.cluster = cluster;
    this.helpers.attachSync(new ClusterExpectationSync(cluster.commonChannel()));
    cluster.shareExpectations({
      applyPeer: (add, remove) => this.helpers.onPeerExpectations(add, remove),
      live: () => this.helpers.liveExpectations(),
    });
  }

  start(): void {
    this.puntRing.start();
    this.eventRing.start();
    this.helpers.start();
    this.sweeper.start();
  }

  async stop(): Promise<void> {
    this.puntRing.close();
    this.eventRing.close();
    this.pipeline.flush();
    this.helpers.close();
    await this.sweeper.stop();
  }

  status(): StatusView {
    const active = this.rules.current();
    return {
      version: this.s.version,
      nodeId: this.s.nodeId,
      uptimeMs: Date.now() - this.startedAt,
      interfaces: this.dp.interfaces.map((i) => ({ name: i.name, zone: i.zone, ifindex: i.ifindex, xdpMode: this.s.xdpMode })),
      rulesFile: this.s.rulesFile,
      ruleCount: active.ruleSet.rules.length,
      rulesLoadedAt: active.loadedAt.toISOString(),
      ...this.connectionCount(),
      tableCapacity: this.dp.capacity,
      ...(this.cluster ? { cluster: this.cluster.status() } : {}),
    };
  }

  /** The sweeper's census; before its first full pass, a count made now. */
  private connectionCount(): Pick<StatusView, 'connections' | 'connectionsCountedMsAgo'> {
    const census = this.sweeper.census();
    if (!census) return { connections: this.table.count(), connectionsCountedMsAgo: 0 };
    return { connections: census.entries, connectionsCountedMsAgo: Math.round(performance.now() - census.atMs) };
  }

  peers(): PeerView[] {
    return this.clustered().peers();
  }

  setSyncMode(stateClass: StateClassName, mode: SyncModeName): SyncModeChange {
    const previous = this.clustered().setSyncMode(stateClass, mode);
    return { stateClass, mode, previous };
  }

  drain(): Promise<DrainResult> {
    return this.clustered().drain(DRAIN_TIMEOUT_MS);
  }

  async *listConnections(filter: ConnFilter): AsyncIterable<ConnView> {
    const compiled = new CompiledFilter(filter);
    const views: ConnView[] = [];
    await this.table.scanChunks(this.s.sweepChunk, (keys, values, count) => {
      const now = monotonicNs();
      for (let i = 0; i < count; i++) {
        const kOff = i * FLOW_KEY_SIZE;
        const vOff = i * flowEntry.size;
        if (compiled.matches(keys, kOff, values, vOff)) views.push(toConnView(keys, kOff, values, vOff, now));
      }
      return true;
    });
    yield* views;
  }

  async deleteConnections(filter: ConnFilter): Promise<number> {
    const compiled = new CompiledFilter(filter);
    return this.removeWhere((keys, kOff, values, vOff) => compiled.matches(keys, kOff, values, vOff), 'deleted');
  }

  async reloadRules(recheck: boolean): Promise<ReloadResult> {
    const active = this.rules.reload();
    this.counters.add('rule_reloads');
    this.log.info({ rules: active.ruleSet.rules.length, file: active.ruleSet.file, recheck }, 'rules reloaded');
    if (!recheck) return { ruleCount: active.ruleSet.rules.length, removed: 0 };
    const query = newFlowQuery();
    const removed = await this.removeWhere((keys, kOff, values, vOff) => {
      const flags = flowEntry.flags(values, vOff);
      // Related flows were admitted through their parent, not by a rule.
      if (flags & FlowFlag.FLOW_F_RELATED) return false;
      const iface = this.interfaces.get(flowEntry.origIfindex(values, vOff));
      const origIsA = (flags & FlowFlag.FLOW_F_ORIG_A) !== 0;
      fillFlowQuery(query, keys, kOff, origIsA, echoRequestType(flowKey.proto(keys, kOff)), iface);
      return active.matcher.match(query)?.action !== 'accept';
    }, 'recheck');
    this.counters.add('recheck_removed', removed);
    return { ruleCount: active.ruleSet.rules.length, removed };
  }

  stats(): StatsView {
    return { datapath: readCounters(this.dp.countersFd), controller: { ...this.counters.snapshot(), ...this.pipeline.latency.counters('first_packet'), ...this.helpers.counters() }, cluster: this.cluster?.counters() ?? {} };
  }

  private clustered(): EngineCluster {
    if (!this.cluster) throw new PreconditionError('this node is not a cluster member (no cluster section in its config)');
    return this.cluster;
  }

  private async removeWhere(
    pred: (keys: Uint8Array, kOff: number, values: Uint8Array, vOff: number) => boolean,
    reason: 'deleted' | 'recheck',
  ): Promise<number> {
    let removed = 0;
    const doomed = new Uint8Array(this.s.sweepChunk * FLOW_KEY_SIZE);
    const doomedFlags = new Uint8Array(this.s.sweepChunk);
    await this.table.scanChunks(this.s.sweepChunk, (keys, values, count) => {
      let n = 0;
      for (let i = 0; i < count; i++) {
        const kOff = i * FLOW_KEY_SIZE;
        if (!pred(keys, kOff, values, i * flowEntry.size)) continue;
        doomedFlags[n] = flowEntry.flags(values, i * flowEntry.size);
        doomed.set(keys.subarray(kOff, kOff + FLOW_KEY_SIZE), n++ * FLOW_KEY_SIZE);
      }
      const deleted = this.table.deleteBatch(doomed, n);
      // When a key was gone already, deleteBatch compacted the keys and the flags no longer line up:
      // FLOW_F_COMMON makes cluster sync tell every peer.
      for (let i = 0; i < deleted; i++) {
        const flags = deleted === n ? doomedFlags[i]! : FlowFlag.FLOW_F_COMMON;
        this.events.removed(doomed.subarray(i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE), reason, flags);
      }
      removed += deleted;
      return true;
    });
    if (reason === 'deleted') this.counters.add('deleted', removed);
    return removed;
  }
}
