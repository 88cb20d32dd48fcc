// keepalived (VRRP) as a peer in a lab: one VRRP instance between two
// firewall namespaces that moves virtual addresses to the surviving node,
// with a notify script run at each transition (where conntrackd is told to
// commit, resync, ...), as the conntrack-tools manual's primary-backup.sh
// setup does.
//
//   const k = await Keepalived.start(lab, { host: 'n1', advertDev, routerId: 51, priority: 150, vips, notify });
//   await k.isMaster();  k.kill();  await k.stop();
//
// Every file of an instance (config, notify script, pid files) lives in its
// own directory under the lab's temp directory. keepalived runs in the
// foreground (-n) as a tracked lab process, in a process group of its own so
// kill() takes its VRRP child down in the same instant (a crash: no
// priority-0 advert announcing the departure).
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../test/lab/netns.js';
import { waitFor } from '../../test/lab/poll.js';
import type { LabProcess } from '../../test/lab/processes.js';

export const KEEPALIVED = '/usr/sbin/keepalived';
/** Debian package that provides KEEPALIVED (Makefile APT_PACKAGES). */
const PACKAGE = 'keepalived';

/**
 * The shortest advertisement interval keepalived accepts: VRRPv3 carries it
 * in centiseconds (RFC 5798), so 0.01 s. A backup declares the master down
 * after 3 intervals plus a skew of (256 - priority) / 256 intervals.
 */
export const MIN_ADVERT_INTERVAL_S = 0.01;

/** A virtual address and the device (full name) it is added to on the master. */
export interface VirtualAddress {
  /** With prefix length, e.g. 10.1.0.1/24. */
  address: string;
  dev: string;
}

/** Shell command lines run at each VRRP transition (in the node's namespace). */
export interface NotifyCommands {
  master: readonly string[];
  backup: readonly string[];
  fault: readonly string[];
}

export interface KeepalivedOptions {
  host: string;
  /** Device (full name) the VRRP advertisements are sent and heard on. */
  advertDev: string;
  routerId: number;
  /** 1-254; the higher one wins an election. */
  priority: number;
  vips: readonly VirtualAddress[];
  /** Default MIN_ADVERT_INTERVAL_S. */
  advertIntervalS?: number;
  notify: NotifyCommands;
}

/** The installed keepalived's version line; throws naming the package when it is missing. */
export function requireKeepalived(): void {
  if (!existsSync(KEEPALIVED)) throw new Error(`${KEEPALIVED} not found: install the Debian package ${PACKAGE} (make setup)`);
}

/** The notify script: one case per transition, the state as its first argument. */
export function notifyScript(notify: NotifyCommands): string {
  const branch = (state: string, lines: readonly string[]): string => `  ${state})\n${lines.map((l) => `    ${l}\n`).join('')}    ;;\n`;
  return `#!/bin/sh\n# Run by keepalived at a VRRP transition.\ncase "$1" in\n${branch('master', notify.master)}${branch('backup', notify.backup)}${branch('fault', notify.fault)}esac\n`;
}

/**
 * keepalived.conf with one VRRP instance. Both nodes start as BACKUP with
 * nopreempt: the first to time out becomes master and keeps the addresses
 * until it fails, so a restarted node rejoins as backup instead of taking
 * them back (a second, unmeasured failover).
 */
export function keepalivedConfig(opts: KeepalivedOptions, script: string): string {
  if (!Number.isInteger(opts.priority) || opts.priority < 1 || opts.priority > 254) throw new Error(`keepalived priority ${opts.priority}: 1..254`);
  if (!Number.isInteger(opts.routerId) || opts.routerId < 1 || opts.routerId > 255) throw new Error(`keepalived virtual_router_id ${opts.routerId}: 1..255`);
  const interval = opts.advertIntervalS ?? MIN_ADVERT_INTERVAL_S;
  if (interval < MIN_ADVERT_INTERVAL_S) throw new Error(`keepalived advert_int ${interval}: at least ${MIN_ADVERT_INTERVAL_S} s`);
  return [
    'global_defs {',
    `  router_id ${opts.host}`,
    // VRRPv3: the version whose advertisement interval goes below a second.
    '  vrrp_version 3',
    // The notify script is the lab's own, written by root into the lab's directory.
    '  script_user root',
    '}',
    'vrrp_instance failover {',
    '  state BACKUP',
    '  nopreempt',
    `  interface ${opts.advertDev}`,
    `  virtual_router_id ${opts.routerId}`,
    `  priority ${opts.priority}`,
    `  advert_int ${interval}`,
    '  virtual_ipaddress {',
    ...opts.vips.map((v) => `    ${v.address} dev ${v.dev}`),
    '  }',
    `  notify_master "${script} master"`,
    `  notify_backup "${script} backup"`,
    `  notify_fault "${script} fault"`,
    '}',
    '',
  ].join('\n');
}

export class Keepalived {
  private constructor(
    private readonly lab: Lab,
    readonly opts: KeepalivedOptions,
    readonly dir: string,
    private readonly proc: LabProcess,
  ) {}

  /** Writes the config and notify script and starts keepalived (VRRP only) in the host's namespace. */
  static async start(lab: Lab, opts: KeepalivedOptions): Promise<Keepalived> {
    requireKeepalived();
    const dir = join(lab.tmpDir, `keepalived-${opts.host}`);
    mkdirSync(dir, { recursive: true });
    const script = join(dir, 'notify.sh');
    writeFileSync(script, notifyScript(opts.notify));
    chmodSync(script, 0o700);
    const config = join(dir, 'keepalived.conf');
    writeFileSync(config, keepalivedConfig(opts, script));
    const pidFiles = ['keepalived.pid', 'vrrp.pid', 'checkers.pid'].map((f) => join(dir, f));
    // A killed instance leaves its pid files, and keepalived refuses to start over them.
    for (const f of pidFiles) rmSync(f, { force: true });
    const argv = [
      // setsid: a process group of its own (see kill()); it execs, so the pid is keepalived's.
      'setsid', KEEPALIVED, '--dont-fork', '--log-console', '--log-detail', '--vrrp', '--use-file', config,
      `--pid=${pidFiles[0]}`, `--vrrp_pid=${pidFiles[1]}`, `--checkers_pid=${pidFiles[2]}`,
    ];
    const proc = lab.spawn(opts.host, argv, { logFile: join(dir, 'console.log') });
    const k = new Keepalived(lab, opts, dir, proc);
    // keepalived logs (to stderr, with --log-console) the instance's first state once its VRRP child runs.
    await waitFor(
      () => {
        if (!proc.running) throw new Error(`keepalived on ${opts.host} exited (${JSON.stringify(proc.exit)}): ${k.logTail()}`);
        return /\(failover\) Entering (BACKUP|MASTER) STATE/.test(proc.stderr);
      },
      { timeoutMs: 10_000, intervalMs: 50, what: `keepalived on ${opts.host} to enter a VRRP state` },
    );
    return k;
  }

  /** The node holds the first virtual address (keepalived adds them all at once as master). */
  async isMaster(): Promise<boolean> {
    const vip = this.opts.vips[0];
    if (!vip) throw new Error('keepalived: no virtual address configured');
    const r = await this.lab.execChecked(this.opts.host, ['ip', '-o', 'addr', 'show', 'dev', vip.dev]);
    return r.stdout.includes(` ${vip.address} `);
  }

  get running(): boolean {
    return this.proc.running;
  }

  /** The log lines so far, for error messages. */
  logTail(lines = 10): string {
    return this.proc.stderr.trim().split('\n').slice(-lines).join('\n');
  }

  /** kill -9 of the whole process group (parent and VRRP child in one signal); resolves when all of it is gone. */
  async kill(): Promise<void> {
    if (!this.proc.running) return;
    const group = -this.proc.pid;
    process.kill(group, 'SIGKILL');
    await this.proc.exited;
    await waitFor(() => !groupAlive(group), { timeoutMs: 5000, intervalMs: 10, what: `keepalived's VRRP child on ${this.opts.host} to die` });
  }

  /** SIGTERM (keepalived removes the addresses and tells the peer), SIGKILL after a grace period. */
  stop(): Promise<void> {
    return this.proc.stop();
  }
}

/** Whether any process of a group (negative pid) is left. */
function groupAlive(group: number): boolean {
  try {
    process.kill(group, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
