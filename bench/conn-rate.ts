// Item 4: short TCP connections per second through the firewall (one node
// or a cluster), and the time from connect() to established as the client
// sees it (the first packet's added latency is its difference to plain
// forwarding). build/bench/tcp-conns (bench/agents/tcp-conns.c, built by
// `make build`) is both server and client; the labs name their endpoints
// `cli` and `srv` alike.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../test/lab/netns.js';
import { REPO_ROOT } from '../test/lab/paths.js';
import type { LabProcess } from '../test/lab/processes.js';
import { BENCH_PORTS } from './lib/firewalls.js';

const AGENT = join(REPO_ROOT, 'build/bench/tcp-conns');

/** A connection that fails is retried by no one: more failures than this share of a run make the run invalid. */
const MAX_FAILED_SHARE = 0.01;

export class ConnRateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnRateError';
  }
}

function agent(): string {
  if (!existsSync(AGENT)) throw new ConnRateError(`${AGENT} is missing: run make build`);
  return AGENT;
}

export async function startConnServer(lab: Lab): Promise<LabProcess> {
  const proc = lab.spawn('srv', [agent(), 'server', '--port', String(BENCH_PORTS.conns)]);
  await proc.waitForJson((m) => m.event === 'listening', 15_000, 'the connection server to listen');
  return proc;
}

/**
 * The client namespace may use the whole port range: a run opens tens of
 * thousands of connections and each client port is free again once the
 * server's FIN is answered.
 */
export async function prepareConnClient(lab: Lab): Promise<void> {
  await lab.execChecked('cli', ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
}

export interface ConnRun {
  /** Completed connections per second. */
  rate: number;
  failed: number;
  connectP50Us: number;
  connectP99Us: number;
}

export interface ConnLoad {
  /** Connections to make (at most, with durationMs). */
  count: number;
  /** How many are in flight at once. */
  concurrency: number;
  /** Start no new connection after this long (the ones in flight still finish). */
  durationMs?: number;
}

/** Connections from the client to `server` on the benchmark's port. */
export async function connRun(lab: Lab, server: string, load: ConnLoad): Promise<ConnRun> {
  const argv = [agent(), 'client', '--host', server, '--port', String(BENCH_PORTS.conns),
    '--count', String(load.count), '--concurrency', String(load.concurrency), '--timeout-ms', '60000',
    ...(load.durationMs === undefined ? [] : ['--duration-ms', String(load.durationMs)])];
  const r = await lab.exec('cli', argv, { timeoutMs: 90_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"event":"done"'));
  if (!line) throw new ConnRateError(`connection client gave no result (exit ${r.code}): ${r.stderr}`);
  const done = JSON.parse(line) as { completed: number; failed: number; seconds: number; connectUs?: { p50: number; p99: number } };
  if (!done.connectUs || done.completed === 0) throw new ConnRateError(`no connection to ${server} completed (${done.failed} failed)`);
  const started = done.completed + done.failed;
  if (done.failed > started * MAX_FAILED_SHARE) {
    throw new ConnRateError(`${done.failed} of ${started} connections to ${server} failed (more than ${MAX_FAILED_SHARE * 100} %)`);
  }
  return { rate: done.completed / done.seconds, failed: done.failed, connectP50Us: done.connectUs.p50, connectP99Us: done.connectUs.p99 };
}
