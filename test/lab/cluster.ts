// A syncwall cluster inside a lab: the cluster topology (topology.ts), a
// cluster CA and node certificates made with `syncwall cert`, one syncwalld
// per node with its `cluster:` config section, and waiting until the nodes
// see each other. Nodes of the topology that are not started are the
// spare ones a test can join later: every node's config lists all of them.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerView } from '../../control/src/api/backend.js';
import { readCounters } from '../../control/src/bpf/counters.js';
import { closeFd, objGet } from '../../control/src/bpf/libbpf.js';
import { Daemon, runCli, SYNCWALL, type CliResult } from './daemon.js';
import { createLab, type Lab } from './netns.js';
import { BPFFS_ROOT, REPO_ROOT } from './paths.js';
import { waitFor } from './poll.js';
import { runChecked } from './processes.js';
import { CLUSTER, clusterNode, clusterTopology } from './topology.js';

export type ClusterMode = 'load-sharing' | 'standby';

/**
 * The cluster lab attaches XDP in generic mode. In native mode on a veth, a
 * frame the bridge hands over arrives as an skb whose packet type (multicast,
 * for the cluster MAC) was set before XDP ran; the program's rewrite of the
 * destination to the interface's own MAC does not change it, and the stack
 * then refuses to forward the frame (ip_forward drops non-PACKET_HOST).
 * Generic XDP re-derives the packet type after the program (kernel 6.18).
 */
export const CLUSTER_XDP_MODE = 'generic';

export interface ClusterLabOptions {
  /** Nodes in the topology (started or spare), default 4. */
  nodes?: number;
  /** Text of the shared rules file. */
  rules: string;
  /** How syncwalld attaches XDP on the nodes (default generic, see CLUSTER_XDP_MODE). */
  xdpMode?: 'native' | 'generic';
  /** Further top-level daemon config for every node (e.g. `tables` for a benchmark's table size). */
  config?: Record<string, unknown>;
  /** How long a node's daemon may take to answer after its start, default 120 s. */
  startTimeoutMs?: number;
  /** Also make certificates from another CA (default true; only the impostor tests use them). */
  foreignCerts?: boolean;
}

export interface NodeOptions {
  mode?: ClusterMode;
  /** k, default 1. */
  backups?: number;
  /** Certificate set: the cluster's own (default) or one signed by another CA. */
  certs?: 'cluster' | 'foreign';
  /** The node id the certificate names, if not the node's own (an impostor). */
  certId?: number;
  periodicIntervalMs?: number;
  /** Heartbeat silence before a peer is failed, default 400 ms (a test that cuts a node's sync link for a while raises it). */
  failureTimeoutMs?: number;
  /** Heartbeat period, default 100 ms. */
  heartbeatMs?: number;
}

export class ClusterLabError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClusterLabError';
  }
}

export class ClusterLab {
  private readonly daemons = new Map<number, Daemon>();

  private constructor(
    readonly lab: Lab,
    readonly nodeIds: readonly number[],
    private readonly rules: string,
    private readonly xdpMode: 'native' | 'generic',
    private readonly extraConfig: Record<string, unknown>,
    private readonly startTimeoutMs: number,
  ) {}

  /** Builds the lab and the certificates (the cluster's and another CA's). */
  static async create(opts: ClusterLabOptions): Promise<ClusterLab> {
    const nodes = opts.nodes ?? 4;
    const lab = await createLab({ topology: clusterTopology(nodes) });
    const cluster = new ClusterLab(lab, Array.from({ length: nodes }, (_, i) => i + 1), opts.rules, opts.xdpMode ?? CLUSTER_XDP_MODE, opts.config ?? {}, opts.startTimeoutMs ?? 120_000);
    try {
      for (const set of opts.foreignCerts === false ? (['cluster'] as const) : (['cluster', 'foreign'] as const)) await cluster.makeCerts(set);
    } catch (err) {
      await lab.teardown();
      throw new ClusterLabError(`creating the lab certificates failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return cluster;
  }

  certDir(set: 'cluster' | 'foreign'): string {
    return join(this.lab.tmpDir, `certs-${set}`);
  }

  private async makeCerts(set: 'cluster' | 'foreign'): Promise<void> {
    const dir = this.certDir(set);
    mkdirSync(dir, { recursive: true });
    await runChecked(['node', SYNCWALL, 'cert', 'ca', '--dir', dir, '--cluster', CLUSTER.id], { cwd: REPO_ROOT });
    for (const id of this.nodeIds) {
      await runChecked(['node', SYNCWALL, 'cert', 'node', '--dir', dir, '--cluster', CLUSTER.id, '--id', String(id)], { cwd: REPO_ROOT });
    }
  }

  /** The `cluster:` section of a node's config. */
  clusterSection(id: number, opts: NodeOptions = {}): Record<string, unknown> {
    const n = clusterNode(id);
    const certs = this.certDir(opts.certs ?? 'cluster');
    const certId = opts.certId ?? id;
    const outside = this.lab.dev({ dev: n.dev.outside });
    const inside = this.lab.dev({ dev: n.dev.inside });
    return {
      id: CLUSTER.id,
      node_id: id,
      mode: opts.mode ?? 'load-sharing',
      backups: opts.backups ?? 1,
      listen: `${n.sync}:${CLUSTER.syncPort}`,
      peers: this.nodeIds.filter((p) => p !== id).map((p) => ({ id: p, address: `${clusterNode(p).sync}:${CLUSTER.syncPort}` })),
      tls: { ca: join(certs, 'ca.pem'), cert: join(certs, `node-${certId}.pem`), key: join(certs, `node-${certId}-key.pem`) },
      mac: CLUSTER.mac,
      addresses: [
        { interface: outside, address: CLUSTER.outside.v4 },
        { interface: outside, address: CLUSTER.outside.v6 },
        { interface: inside, address: CLUSTER.inside.v4 },
        { interface: inside, address: CLUSTER.inside.v6 },
      ],
      heartbeat_ms: opts.heartbeatMs ?? 100,
      failure_timeout_ms: opts.failureTimeoutMs ?? 400,
      sync: { node: 'combined', common: 'combined', periodic_interval_ms: opts.periodicIntervalMs ?? 2000 },
    };
  }

  /**
   * The node's daemon, created with these options the first time (or again
   * with `fresh`, which rewrites its config at the next start).
   */
  daemon(id: number, opts: NodeOptions = {}, fresh = false): Daemon {
    const existing = this.daemons.get(id);
    if (existing && !fresh) return existing;
    if (existing?.process?.running) throw new ClusterLabError(`node ${id} is running; stop it before reconfiguring`);
    const host = clusterNode(id).host;
    const daemon = new Daemon(this.lab, host, {
      host,
      rules: this.rules,
      // Nodes start side by side on two cores: loading the XDP object takes a while each.
      startTimeoutMs: this.startTimeoutMs,
      config: {
        ...this.extraConfig,
        // One pin directory per node, all under the lab's own (removed at teardown).
        bpffs: join(BPFFS_ROOT, this.lab.prefix),
        instance: host,
        xdp_mode: this.xdpMode,
        cluster: this.clusterSection(id, opts),
      },
    });
    // One entry per node in the lab's list, so diagnostics print each log once.
    const index = existing ? this.lab.daemons.indexOf(existing) : -1;
    if (index >= 0) this.lab.daemons.splice(index, 1, daemon);
    else this.lab.daemons.push(daemon);
    this.daemons.set(id, daemon);
    return daemon;
  }

  /** Where node id's daemon pins a map (the directory the config above gives it). */
  pinPath(id: number, map: string): string {
    return join(BPFFS_ROOT, this.lab.prefix, clusterNode(id).host, map);
  }

  /** Node id's data-plane counters, read from its pinned map: works while its daemon is dead. */
  pinnedCounters(id: number): Record<string, bigint> {
    const fd = objGet(this.pinPath(id, 'sw_counters'));
    try {
      return readCounters(fd);
    } finally {
      closeFd(fd);
    }
  }

  running(): number[] {
    return this.nodeIds.filter((id) => this.daemons.get(id)?.process?.running);
  }

  /** Starts nodes (in parallel) with the given options and waits until the running nodes agree they are all active. */
  async start(ids: readonly number[], opts: NodeOptions = {}): Promise<void> {
    await Promise.all(ids.map((id) => this.daemon(id, opts, true).start()));
    await this.waitConverged();
  }

  cli(id: number, args: readonly string[]): Promise<CliResult> {
    const daemon = this.daemons.get(id);
    if (!daemon) throw new ClusterLabError(`node ${id} has no daemon`);
    return runCli(daemon.socketPath, args);
  }

  /** A CLI command's JSON output; throws with its stderr if it fails. */
  async json<T>(id: number, args: readonly string[]): Promise<T> {
    const r = await this.cli(id, [...args, '--json']);
    if (r.code !== 0) throw new ClusterLabError(`node ${id}: syncwall ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.json<T>();
  }

  peers(id: number): Promise<PeerView[]> {
    return this.json<PeerView[]>(id, ['peers']);
  }

  /**
   * Waits until every running node is active and sees exactly the other
   * running nodes connected and active (stopped nodes are not).
   */
  async waitConverged(timeoutMs = 60_000): Promise<void> {
    let lastView = '';
    try {
      await waitFor(
        async () => {
          const running = this.running();
          const views = await Promise.all(running.map(async (id) => ({ id, self: await this.selfState(id), peers: await this.peers(id) })));
          lastView = JSON.stringify(views.map((v) => ({ id: v.id, self: v.self, peers: v.peers.map((p) => `${p.id}:${p.connected ? 'c' : '-'}:${p.state}`) })));
          return views.every(
            (v) =>
              v.self === 'active' &&
              v.peers.every((p) => (running.includes(p.id) ? p.connected && p.state === 'active' : p.state !== 'active')),
          );
        },
        { timeoutMs, intervalMs: 250, what: 'the cluster to converge' },
      );
    } catch (err) {
      throw new ClusterLabError(`nodes ${this.running().join(',')} did not converge; last view ${lastView}`, { cause: err });
    }
  }

  /** Source ports of the lab client's IPv4 flows to `dport` that a node holds (owned or replica). */
  async clientFlowPorts(id: number, dport: number): Promise<Set<number>> {
    const list = await this.json<{ src: string; sport: number; dport: number }[]>(id, ['conns', 'list', '--port', String(dport)]);
    return new Set(list.filter((c) => c.src === CLUSTER.client.v4 && c.dport === dport).map((c) => c.sport));
  }

  /** This node's own state (joining, active, ...) from `syncwall status`. */
  async selfState(id: number): Promise<string> {
    const status = await this.json<{ cluster?: { state?: string } }>(id, ['status']);
    return status.cluster?.state ?? 'none';
  }

  /**
   * Unplug a node and kill -9 its daemon: a node that dies at once. Unplugged
   * first, because its pinned XDP program would otherwise keep forwarding
   * until its lease lapses, and the kill closes its sync connections, which
   * the peers would hear as a goodbye no crashed machine sends.
   */
  async crash(id: number): Promise<void> {
    await this.lab.linksDown(clusterNode(id).host);
    await this.daemon(id).stop('SIGKILL');
  }

  /** Unplugs (or plugs in again) a node's outside and inside interfaces, or its sync interface. */
  async unplug(id: number, which: 'data' | 'sync' | 'all'): Promise<void> {
    await this.lab.linksDown(clusterNode(id).host, nodeDevs(id, which));
  }

  async plug(id: number, which: 'data' | 'sync' | 'all'): Promise<void> {
    await this.lab.linksUp(clusterNode(id).host, nodeDevs(id, which));
  }

  /** Waits until every running node but `id` sees node `id` as not active (failed, drained, gone). */
  async waitGone(id: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      async () => {
        for (const other of this.running().filter((o) => o !== id)) {
          const peer = (await this.peers(other)).find((p) => p.id === id);
          if (peer?.state === 'active') return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 100, what: `the other nodes to see node ${id} leave` },
    );
  }

  /** The lab's logs, then every node's non-zero data-plane counters (they show where frames went). */
  diagnostics(): string {
    const counters = this.nodeIds.map((id) => `# data-plane counters of node ${id}: ${this.describeCounters(id)}`);
    return [this.lab.diagnostics(), ...counters].join('\n');
  }

  private describeCounters(id: number): string {
    try {
      const nonZero = Object.entries(this.pinnedCounters(id)).filter(([, v]) => v !== 0n);
      return nonZero.map(([name, v]) => `${name}=${v}`).join(' ');
    } catch (err) {
      return `unreadable: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  teardown(): Promise<void> {
    return this.lab.teardown();
  }
}

function nodeDevs(id: number, which: 'data' | 'sync' | 'all'): string[] {
  const { dev } = clusterNode(id);
  if (which === 'data') return [dev.outside, dev.inside];
  if (which === 'sync') return [dev.sync];
  return [dev.outside, dev.inside, dev.sync];
}
