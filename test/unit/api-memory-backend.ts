// An in-memory stand-in for the daemon behind the management API: a fixed
// table of connections with the filter semantics backend.ts documents. It
// lets the real gRPC server and the real CLI be tested without root.
import { BlockList, isIP } from 'node:net';
import type { ConnFilter, ConnView, ManagementBackend, ReloadResult, StatsView, StatusView } from '../../control/src/api/backend.js';

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
  tableCapacity: 262144,
};

export const sampleStats: StatsView = {
  datapath: { pass_established: 123456n, drop_out_of_window: 3n, punt: 2n ** 63n },
  controller: { punts_accepted: 40n, reinject_errors: 0n },
};

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

  constructor(connections: readonly ConnView[] = sampleConnections) {
    this.connections = [...connections];
  }

  status(): StatusView {
    return { ...sampleStatus, connections: this.connections.length };
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
}
