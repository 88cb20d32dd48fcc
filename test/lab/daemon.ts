// syncwalld inside a lab: writes its config and rules into a temp directory,
// starts the real daemon in a firewall namespace, waits until its management
// socket answers, and keeps its log for failure reports. Also the CLI runner.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Lab } from './netns.js';
import { BPFFS_ROOT, REPO_ROOT } from './paths.js';
import { waitFor } from './poll.js';
import { type LabProcess, run } from './processes.js';

export const SYNCWALLD = join(REPO_ROOT, 'bin/syncwalld');
export const SYNCWALL = join(REPO_ROOT, 'bin/syncwall');

export interface DaemonOptions {
  /** Firewall host to run on; the topology's only firewall by default. */
  host?: string;
  /** Text of the rules file. */
  rules?: string;
  /** Top-level config keys that replace the lab's defaults. */
  config?: Record<string, unknown>;
  startTimeoutMs?: number;
}

export class DaemonError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DaemonError';
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON; throws with the output quoted if it is not JSON. */
  json<T = unknown>(): T;
}

export async function runCli(socketPath: string, args: readonly string[], timeoutMs = 20_000): Promise<CliResult> {
  const argv = ['node', SYNCWALL, '--socket', socketPath, ...args];
  const r = await run(argv, { timeoutMs, cwd: REPO_ROOT });
  return {
    code: r.code,
    stdout: r.stdout,
    stderr: r.stderr,
    json<T>(): T {
      try {
        return JSON.parse(r.stdout) as T;
      } catch (err) {
        throw new DaemonError(`syncwall ${args.join(' ')}: stdout is not JSON (exit ${r.code}): ${r.stdout}${r.stderr}`, { cause: err });
      }
    },
  };
}

const DEFAULT_RULES = `accept proto tcp dport 80
accept proto icmp icmp-type echo-request
accept proto icmpv6 icmp-type echo-request
`;

export class Daemon {
  readonly dir: string;
  readonly configPath: string;
  readonly rulesPath: string;
  readonly socketPath: string;
  readonly logPath: string;
  private proc: LabProcess | undefined;

  constructor(
    private readonly lab: Lab,
    readonly host: string,
    private readonly opts: DaemonOptions,
  ) {
    this.dir = join(lab.tmpDir, `daemon-${host}`);
    this.configPath = join(this.dir, 'syncwall.yaml');
    this.rulesPath = join(this.dir, 'rules.conf');
    this.socketPath = join(this.dir, 'syncwalld.sock');
    this.logPath = join(this.dir, 'syncwalld.log');
  }

  /** The config the daemon runs with (the agreed YAML shape). */
  config(): Record<string, unknown> {
    return {
      instance: this.lab.prefix,
      bpffs: BPFFS_ROOT,
      interfaces: this.lab.firewallInterfaces(this.host),
      xdp_mode: 'native',
      rules: 'rules.conf',
      management: { socket: this.socketPath },
      tables: { connections: 65536 },
      punt: { rate: 20000, burst: 2000 },
      timeouts: { tcp_established: 432000 },
      log: { level: 'info' },
      ...this.opts.config,
    };
  }

  get process(): LabProcess | undefined {
    return this.proc;
  }

  /** Writes config and rules (first start only keeps existing rules) and starts syncwalld. */
  async start(): Promise<void> {
    if (this.proc?.running) throw new DaemonError(`syncwalld on ${this.host} is already running`);
    if (!this.proc) {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(this.configPath, stringify(this.config()));
      this.writeRules(this.opts.rules ?? DEFAULT_RULES);
    }
    writeFileSync(this.logPath, `--- syncwalld start ${new Date().toISOString()}\n`, { flag: 'a' });
    // Its own sysfs: syncwalld reads its interfaces' MACs from /sys/class/net.
    const proc = this.lab.spawn(this.host, ['node', SYNCWALLD, '--config', this.configPath], { logFile: this.logPath, ownSysfs: true });
    this.proc = proc;
    await waitFor(
      async () => {
        if (!proc.running) throw new DaemonError(`syncwalld exited during start (${JSON.stringify(proc.exit)}):\n${this.log()}`);
        return (await runCli(this.socketPath, ['status', '--json'], 5000)).code === 0;
      },
      { timeoutMs: this.opts.startTimeoutMs ?? 60_000, intervalMs: 200, what: `syncwalld on ${this.host} to answer status` },
    );
  }

  writeRules(text: string): void {
    writeFileSync(this.rulesPath, text);
  }

  /** Signals the daemon and waits (bounded) for it to exit; returns its exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const proc = this.proc;
    if (!proc) throw new DaemonError('syncwalld was never started');
    proc.signal(signal);
    const exit = await waitFor(() => proc.exit, { timeoutMs, what: `syncwalld to exit after ${signal}` });
    return exit;
  }

  /** SIGSTOP (freeze: a controller whose event loop stalls) or SIGCONT (thaw). */
  pause(paused: boolean): void {
    if (!this.proc) throw new DaemonError('syncwalld was never started');
    this.proc.signal(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  /** SIGTERM, then start again with the same config and rules. */
  async restart(): Promise<void> {
    await this.stop('SIGTERM');
    await this.start();
  }

  log(): string {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  describe(): string {
    return `===== syncwalld on ${this.host} (${this.configPath}) =====\n${this.log()}`;
  }
}
