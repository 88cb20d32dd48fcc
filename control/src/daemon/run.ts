// syncwalld's life cycle: load the rules, bring up the data plane, start the
// controller and the management API, then serve until SIGTERM/SIGINT.
// SIGHUP reloads the rules file.
//
// Stopping leaves the XDP programs attached and the maps pinned: established
// flows keep flowing in the kernel while no daemon runs (new flows wait in the
// punt ring and are dropped if stale), and the next syncwalld takes over the
// live table. `syncwalld detach` is the way to remove syncwall from the
// interfaces.
import { join } from 'node:path';
import { startManagementServer } from '../api/server.js';
import { Datapath, detach } from '../bpf/datapath.js';
import type { Config } from '../config/schema.js';
import { Engine } from '../engine/engine.js';
import { RulesHolder } from '../engine/rules-holder.js';
import type { Logger } from '../log.js';
import { SYNCWALL_VERSION } from '../install-files.js';

/** Records handled per ring-buffer wakeup before the event loop gets a turn. */
const RING_BUDGET = 4096;
/** A punt older than this was queued while no daemon ran: replaying it would be surprising. */
const MAX_PUNT_AGE_MS = 1000;

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
    nodeId: 0,
  });
  const engine = new Engine(
    datapath,
    rules,
    {
      nodeId: 0,
      rulesFile: config.rules,
      xdpMode: config.xdpMode,
      timeouts: config.timeouts,
      sweepIntervalMs: config.expiry.sweepIntervalMs,
      sweepChunk: config.expiry.batch,
      ringBudget: RING_BUDGET,
      maxPuntAgeMs: MAX_PUNT_AGE_MS,
      version: SYNCWALL_VERSION,
    },
    log,
  );
  engine.start();
  let server;
  try {
    server = await startManagementServer(engine, config.management.socket, log);
  } catch (err) {
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
  log.info({ signal }, 'stopping; the XDP fast path stays attached');
  await server.close();
  await engine.stop();
  datapath.close();
}

/** Removes syncwall from the interfaces and drops its pinned maps (the connection table). */
export function detachDatapath(config: Config, log: Logger): void {
  const removed = detach(pinDir(config));
  log.info({ pinDir: pinDir(config), removed }, removed.length ? 'detached' : 'nothing was attached');
}
