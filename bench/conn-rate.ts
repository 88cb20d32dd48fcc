// Item 4 (single node): short TCP connections per second through the
// firewall node, and the time from connect() to established as the client
// sees it (the first packet's added latency is its difference to plain
// forwarding). bench/agents/tcp-conns.ts is both server and client.
import { join } from 'node:path';
import type { Lab } from '../test/lab/netns.js';
import { REPO_ROOT } from '../test/lab/paths.js';
import type { LabProcess } from '../test/lab/processes.js';
import { SINGLE } from '../test/lab/topology.js';
import { BENCH_PORTS } from './lib/firewalls.js';

const AGENT = join(REPO_ROOT, 'bench/agents/tcp-conns.ts');

export class ConnRateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnRateError';
  }
}

export async function startConnServer(lab: Lab): Promise<LabProcess> {
  const proc = lab.spawn('srv', ['node', '--import', 'tsx', AGENT, 'server', '--port', String(BENCH_PORTS.conns)]);
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

export async function connRun(lab: Lab, count: number, concurrency: number): Promise<ConnRun> {
  const argv = ['node', '--import', 'tsx', AGENT, 'client', '--host', SINGLE.server.v4, '--port', String(BENCH_PORTS.conns),
    '--count', String(count), '--concurrency', String(concurrency), '--timeout-ms', '60000'];
  const r = await lab.exec('cli', argv, { timeoutMs: 90_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"event":"done"'));
  if (!line) throw new ConnRateError(`connection client gave no result (exit ${r.code}): ${r.stderr}`);
  const done = JSON.parse(line) as { completed: number; failed: number; seconds: number; connectUs: { p50: number; p99: number } };
  if (done.completed === 0) throw new ConnRateError(`no connection completed (${done.failed} failed)`);
  return { rate: done.completed / done.seconds, failed: done.failed, connectP50Us: done.connectUs.p50, connectP99Us: done.connectUs.p99 };
}
