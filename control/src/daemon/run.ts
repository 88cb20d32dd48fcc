// syncwalld's life cycle: load the rules, bring up the data plane, start the
// controller and the management API, then serve until SIGTERM/SIGINT.
// SIGHUP reloads the rules file. A cluster member (config `cluster:`) also
// runs cluster sync: it joins before it owns buckets, and on SIGTERM/SIGINT
// drains (hands its buckets and their flows to the other nodes, bounded in
// time) before it stops.
//
// Stopping leaves the XDP programs attached and the maps pinned: established
// flows keep flowing in the kernel while no daemon runs (new flows wait in the
// punt ring and are dropped if stale), and the next syncwalld takes over the
// live table. `syncwalld detach` is the way to remove syncwall from the
// interfaces.
import { join } from 'node:path';
import { startManagementServer } from '../api/server.js';
import { ConnTable } from '../bpf/conn-table.js';
import { Datapath, detach } from '../bpf/datapath.js';
import { FrameInjector } from '../bpf/inject.js';
import { ClusterNode } from '../cluster/cluster-node.js';
import type { Config } from '../config/schema.js';
import { Engine, monotonicNs } from '../engine/engine.js';
import { RulesHolder } from '../engine/rules-holder.js';
import type { Logger } from '../log.js';
import { SYNCWALL_VERSION } from '../install-files.js';
import { macBytes } from '../net/address.js';

/** Records handled per ring-buffer wakeup before the event loop gets a turn. */
const RING_BUDGET = 4096;
/** A punt older than this was queued while no daemon ran: replaying it would be surprising. */
const MAX_PUNT_AGE_MS = 1000;
/** A clustered node's drain at SIGTERM gets this long before the daemon stops anyway. */
const SHUTDOWN_DRAIN_MS = 10_000;

function pinDir(config: Config): string {
  return join(config.bpffs, config.instance);
}

export async function runDaemon(config: Config, log: Logger): Promise<void> {
  const rules = new RulesHolder(config.rules);
  const datapath = Datapath.open({
    pinDir: pinDir(config),
    interfaces: config.interfaces,
    xdpMode: config.xdpMode,
    connections: config.tables.connections,
    puntRate: config.punt.rate,
    puntBurst: config.punt.burst,
    lastSeenGranularityNs: BigInt(config.lastSeenGranularityMs) * 1_000_000n,
    fastForward: config.fastForward,
    nodeId: config.cluster?.nodeId ?? 0,
    ...(config.cluster ? { cluster: { mac: macBytes(config.cluster.mac) } } : {}),
  });
  const engine = new Engine(
    datapath,
    rules,
    {
      nodeId: config.cluster?.nodeId ?? 0,
      rulesFile: config.rules,
      xdpMode: config.xdpMode,
      timeouts: config.timeouts,
      sweepIntervalMs: config.expiry.sweepIntervalMs,
      sweepChunk: config.expiry.batch,
      ringBudget: RING_BUDGET,
      maxPuntAgeMs: MAX_PUNT_AGE_MS,
      helpers: config.helpers,
      version: SYNCWALL_VERSION,
    },
    log,
  );
  const cluster = config.cluster && startCluster(config, datapath, engine, log);
  engine.start();
  let server;
  try {
    server = await startManagementServer(engine, config.management.socket, log);
  } catch (err) {
    await cluster?.stop();
    await engine.stop();
    datapath.close();
    throw err;
  }
  log.info(
    { interfaces: datapath.interfaces.map((i) => i.name), rules: rules.current().ruleSet.rules.length },
    'syncwalld running',
  );

  const onHup = (): void => {
    engine.reloadRules(false).catch((err: unknown) => log.error({ err }, 'rules reload on SIGHUP failed; old rules stay'));
  };
  process.on('SIGHUP', onHup);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.off('SIGHUP', onHup);
  if (cluster) await drainForShutdown(cluster, log);
  log.info({ signal }, 'stopping; the XDP fast path stays attached');
  await server.close();
  await cluster?.stop();
  await engine.stop();
  datapath.close();
}

/** Creates the cluster node, hooks it into the engine and starts joining in the background. */
function startCluster(config: Config, datapath: Datapath, engine: Engine, log: Logger): ClusterNode {
  const node = new ClusterNode({
    config: config.cluster!,
    interfaces: datapath.interfaces,
    maps: datapath,
    table: new ConnTable(datapath.connsFd, config.expiry.batch),
    injector: new FrameInjector(datapath.mainProgFd, datapath.txProgFd),
    events: engine.events,
    log,
    monotonicNs,
    lastSeenGranularityNs: BigInt(config.lastSeenGranularityMs) * 1_000_000n,
    chunk: config.expiry.batch,
  });
  engine.attachCluster(node);
  node.start().catch((err: unknown) => log.error({ err }, 'cluster sync failed to start; this node forwards nothing for the cluster'));
  return node;
}

/** SIGTERM on a cluster member: hand the buckets over first (trigger d), bounded in time. */
async function drainForShutdown(cluster: ClusterNode, log: Logger): Promise<void> {
  const status = cluster.status();
  if (status.state !== 'active') {
    log.info({ state: status.state }, 'not draining at shutdown: the node is not active');
    return;
  }
  try {
    await cluster.drain(SHUTDOWN_DRAIN_MS);
  } catch (err) {
    log.error({ err }, 'drain at shutdown failed; the peers take over on heartbeat timeout');
  }
}

/** Removes syncwall from the interfaces and drops its pinned maps (the connection table). */
export function detachDatapath(config: Config, log: Logger): void {
  const removed = detach(pinDir(config));
  log.info({ pinDir: pinDir(config), removed }, removed.length ? 'detached' : 'nothing was attached');
}
