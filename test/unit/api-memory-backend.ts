// An in-memory stand-in for the daemon behind the management API: a fixed
// table of connections with the filter semantics backend.ts documents. It
// lets the real gRPC server and the real CLI be tested without root.
import { BlockList, isIP } from 'node:net';
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
} from '../../control/src/api/backend.js';
import { PreconditionError } from '../../control/src/api/errors.js';

export function conn(overrides: Partial<ConnView>): ConnView {
  return {
    family: 4,
    proto: 6,
    src: '10.0.0.1',
    sport: 40000,
    dst: '10.0.1.1',
    dport: 80,
    state: 'established',
    flags: [],
    ruleId: 1,
    helper: '',
    ownerNode: 1,
    version: 1,
    ageMs: 5000,
    idleMs: 100,
    packetsOrig: 10n,
    bytesOrig: 1000n,
    packetsReply: 8n,
    bytesReply: 9000n,
    ...overrides,
  };
}

export const sampleConnections: readonly ConnView[] = [
  conn({ src: '10.0.0.1', sport: 40000, dst: '10.0.1.1', dport: 80 }),
  conn({ src: '10.0.0.2', sport: 40001, dst: '10.0.1.1', dport: 443, state: 'syn_sent', flags: ['seen_reply'] }),
  conn({ proto: 17, src: '10.0.0.3', sport: 5353, dst: '192.168.1.1', dport: 53, state: 'udp_replied', ruleId: 2 }),
  conn({ family: 6, proto: 6, src: '2001:db8::1', sport: 50000, dst: '2001:db8:1::2', dport: 22, ruleId: 3 }),
  // Counters beyond 2^53 must survive the wire and the CLI's JSON.
  conn({ proto: 1, src: '10.0.0.9', sport: 7, dst: '10.0.1.9', dport: 0, state: 'icmp_replied', bytesOrig: 2n ** 60n + 1n }),
];

export const sampleStatus: StatusView = {
  version: '0.1.0',
  nodeId: 1,
  uptimeMs: 61_000,
  interfaces: [
    { name: 'veth-in', zone: 'inside', ifindex: 4, xdpMode: 'native' },
    { name: 'veth-out', zone: 'outside', ifindex: 5, xdpMode: 'native' },
  ],
  rulesFile: '/etc/syncwall/rules.conf',
  ruleCount: 12,
  rulesLoadedAt: '2026-11-22T01:00:00.000Z',
  connections: sampleConnections.length,
  connectionsCountedMsAgo: 700,
  tableCapacity: 262144,
};

export const sampleStats: StatsView = {
  datapath: { pass_established: 123456n, drop_out_of_window: 3n, punt: 2n ** 63n },
  controller: { punts_accepted: 40n, reinject_errors: 0n },
  cluster: {},
};

export const sampleCluster: ClusterStatusView = {
  clusterId: 'lab1',
  nodeId: 1,
  state: 'active',
  mode: 'load-sharing',
  backups: 1,
  syncNode: 'combined',
  syncCommon: 'combined',
  members: [1, 2, 3],
  bucketsOwned: 341,
  bucketsBackedUp: 342,
};

export const samplePeers: readonly PeerView[] = [
  { id: 2, address: '10.9.0.2:7400', connected: true, state: 'active', incarnation: 'a1b2c3d4', lastHeartbeatAgoMs: 40, sentSeq: 1200, ackedSeq: 1198, unacked: 2, lagMs: 3, bucketsOwned: 340 },
  { id: 3, address: '10.9.0.3:7400', connected: false, state: 'failed', incarnation: '', lastHeartbeatAgoMs: null, sentSeq: 0, ackedSeq: 0, unacked: 0, lagMs: null, bucketsOwned: 0 },
];

export const sampleDrain: DrainResult = { bucketsHandedOver: 341, entriesPushed: 5000, acked: true, durationMs: 1234 };

export function matches(c: ConnView, f: ConnFilter): boolean {
  if (f.family !== undefined && c.family !== f.family) return false;
  if (f.proto !== undefined && c.proto !== f.proto) return false;
  if (f.port !== undefined && c.sport !== f.port && c.dport !== f.port) return false;
  if (f.state !== undefined && c.state !== f.state) return false;
  if (f.addr !== undefined) {
    const [addr = '', len] = f.addr.split('/');
    if (isIP(addr) !== c.family) return false;
    const type = c.family === 4 ? 'ipv4' : 'ipv6';
    const list = new BlockList();
    list.addSubnet(addr, len === undefined ? (c.family === 4 ? 32 : 128) : Number(len), type);
    if (!list.check(c.src, type) && !list.check(c.dst, type)) return false;
  }
  return true;
}

export class MemoryBackend implements ManagementBackend {
  connections: ConnView[];
  /** When set, reloadRules rejects with it (e.g. a RulesError). */
  reloadFailure: Error | undefined;
  /** Filters received, to check what the API edge handed over. */
  readonly seenFilters: ConnFilter[] = [];
  reloads: boolean[] = [];
  /** When set, the backend is a cluster member with this status; otherwise cluster calls fail as on a single node. */
  cluster: ClusterStatusView | undefined;

  constructor(connections: readonly ConnView[] = sampleConnections) {
    this.connections = [...connections];
  }

  status(): StatusView {
    return { ...sampleStatus, connections: this.connections.length, ...(this.cluster ? { cluster: this.cluster } : {}) };
  }

  async *listConnections(filter: ConnFilter): AsyncIterable<ConnView> {
    this.seenFilters.push(filter);
    for (const c of this.connections) if (matches(c, filter)) yield c;
  }

  async deleteConnections(filter: ConnFilter): Promise<number> {
    this.seenFilters.push(filter);
    const before = this.connections.length;
    this.connections = this.connections.filter((c) => !matches(c, filter));
    return before - this.connections.length;
  }

  async reloadRules(recheck: boolean): Promise<ReloadResult> {
    this.reloads.push(recheck);
    if (this.reloadFailure) throw this.reloadFailure;
    return { ruleCount: 12, removed: recheck ? 2 : 0 };
  }

  stats(): StatsView {
    return sampleStats;
  }

  peers(): PeerView[] {
    this.member();
    return [...samplePeers];
  }

  setSyncMode(stateClass: StateClassName, mode: SyncModeName): SyncModeChange {
    const cluster = this.member();
    const key = stateClass === 'node' ? 'syncNode' : 'syncCommon';
    const previous = cluster[key];
    cluster[key] = mode;
    return { stateClass, mode, previous };
  }

  async drain(): Promise<DrainResult> {
    const cluster = this.member();
    if (cluster.state !== 'active') throw new PreconditionError(`node 1 is ${cluster.state}, not active`);
    cluster.state = 'draining';
    return sampleDrain;
  }

  private member(): ClusterStatusView {
    if (!this.cluster) throw new PreconditionError('this node is not a cluster member (no cluster section in its config)');
    return this.cluster;
  }
}
