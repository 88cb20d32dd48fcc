// conntrackd (conntrack-tools) as a peer in a lab: the FTFW configuration
// between two firewall namespaces, the daemon in one namespace, its CPU time
// and RSS, and the control commands a failover script gives it.
//
//   await requireConntrackd();
//   const d = await Conntrackd.start(lab, { host: 'n1', link: { dev: lab.dev({ dev: 'n1s' }), local: '10.9.0.1', peer: '10.9.0.2' } });
//   … traffic …;  d.cpuNs(), d.rssBytes();  await d.commit();  await d.stop();
//
// Every file of a daemon (config, lock file, control socket, console log) lives in
// its own directory under the lab's temp directory, so several labs and
// several daemons per lab run side by side. The daemon runs in the
// foreground as a tracked lab process: the lab's teardown ends it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../test/lab/netns.js';
import { waitFor } from '../../test/lab/poll.js';
import { type LabProcess, type RunResult, runChecked } from '../../test/lab/processes.js';
import { residentBytes } from './proc.js';

export const CONNTRACKD = '/usr/sbin/conntrackd';
/** Debian package that provides CONNTRACKD (Makefile APT_PACKAGES). */
const PACKAGE = 'conntrackd';
/** conntrackd's default sync port. */
const DEFAULT_PORT = 3780;
const DEFAULT_MULTICAST_GROUP = '225.0.0.50';

/** The version line of the installed conntrackd; throws naming the package when it is missing. */
export async function requireConntrackd(): Promise<string> {
  if (!existsSync(CONNTRACKD)) throw new Error(`${CONNTRACKD} not found: install the Debian package ${PACKAGE} (make setup)`);
  const r = await runChecked([CONNTRACKD, '-v']);
  return r.stdout.split('\n')[0]!.trim();
}

/** The dedicated sync link of one node: its device and address, and the other node's address. */
export interface SyncLink {
  /** Full device name in the node's namespace (lab.dev(...)). */
  dev: string;
  /** This node's IPv4 address on the link. */
  local: string;
  /** The other node's IPv4 address on the link (the UDP destination). */
  peer: string;
  /** UDP port, or the multicast "Group" port; both nodes use the same. Default 3780. */
  port?: number;
  /** Unicast UDP to `peer` (default) or multicast to `group` on `dev`. */
  transport?: 'udp' | 'multicast';
  /** Multicast group address (transport 'multicast'). Default 225.0.0.50. */
  group?: string;
}

export interface ConntrackdOptions {
  /** Lab host (namespace) the daemon runs in. */
  host: string;
  link: SyncLink;
  /**
   * Received states go straight into this node's kernel table instead of an
   * external cache that `commit()` writes at takeover. Costs CPU on the
   * backup, but the states are usable without a commit.
   */
  disableExternalCache?: boolean;
  /** Fixed timeout (s) of entries committed at takeover; unset: conntrackd's own estimate. */
  commitTimeoutS?: number;
  /** Layer-4 protocols replicated. Default TCP and UDP. */
  protocols?: readonly string[];
  /**
   * The node's own addresses (and VIPs): traffic to or from them is local,
   * not forwarded, and is not replicated. The sync addresses are always ignored.
   */
  ignoreAddresses?: readonly string[];
  /** Entries the caches hold at most (HashLimit). Default 1M: large benches must not hit it. */
  hashLimit?: number;
}

/** Where a daemon's files live. */
export interface ConntrackdPaths {
  dir: string;
  config: string;
  lockFile: string;
  socket: string;
  /** The daemon's stdout and stderr (it runs in the foreground, in console mode). */
  console: string;
}

export function conntrackdPaths(dir: string): ConntrackdPaths {
  return { dir, config: join(dir, 'conntrackd.conf'), lockFile: join(dir, 'conntrackd.lock'), socket: join(dir, 'conntrackd.ctl'), console: join(dir, 'console.log') };
}

// Socket buffers far above the defaults (~200 KB): with small ones a burst of
// events overruns the netlink socket, conntrackd drops events and schedules
// a full resync, and the measurement would be of that recovery instead.
const SYNC_SOCKET_BUFFER = 8 << 20;
const NETLINK_BUFFER = 8 << 20;
const NETLINK_BUFFER_MAX = 64 << 20;

/** conntrackd.conf for FTFW mode over a dedicated link (see conntrackd.conf(5) and the Debian ftfw example). */
export function conntrackdConfig(opts: ConntrackdOptions, paths: ConntrackdPaths): string {
  const { link } = opts;
  for (const [what, addr] of [['local', link.local], ['peer', link.peer]] as const) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(addr)) throw new Error(`conntrackd sync link ${what} address ${addr}: an IPv4 address is needed`);
  }
  const port = link.port ?? DEFAULT_PORT;
  const ftfw = [
    '\tMode FTFW {',
    `\t\tDisableExternalCache ${opts.disableExternalCache ? 'On' : 'Off'}`,
    ...(opts.commitTimeoutS === undefined ? [] : [`\t\tCommitTimeout ${opts.commitTimeoutS}`]),
    '\t}',
  ];
  const transport =
    (link.transport ?? 'udp') === 'udp'
      ? ['\tUDP {', `\t\tIPv4_address ${link.local}`, `\t\tIPv4_Destination_Address ${link.peer}`, `\t\tPort ${port}`]
      : ['\tMulticast {', `\t\tIPv4_address ${link.group ?? DEFAULT_MULTICAST_GROUP}`, `\t\tGroup ${port}`, `\t\tIPv4_interface ${link.local}`];
  transport.push(`\t\tInterface ${link.dev}`, `\t\tSndSocketBuffer ${SYNC_SOCKET_BUFFER}`, `\t\tRcvSocketBuffer ${SYNC_SOCKET_BUFFER}`, '\t\tChecksum on', '\t}');
  const ignored = ['127.0.0.1', link.local, link.peer, ...(opts.ignoreAddresses ?? [])];
  const family = (a: string): string => (a.includes(':') ? 'IPv6_address' : 'IPv4_address');
  const hashLimit = opts.hashLimit ?? 1 << 20;
  return [
    'Sync {',
    ...ftfw,
    ...transport,
    '}',
    'General {',
    // Run by the lab, not by systemd; in the foreground it logs to stdout,
    // which the lab process writes to the daemon's console.log.
    '\tSystemd off',
    '\tLogFile off',
    `\tHashSize ${Math.max(8192, hashLimit >> 2)}`,
    `\tHashLimit ${hashLimit}`,
    '\tSyslog off',
    `\tLockFile ${paths.lockFile}`,
    `\tUNIX {\n\t\tPath ${paths.socket}\n\t}`,
    `\tNetlinkBufferSize ${NETLINK_BUFFER}`,
    `\tNetlinkBufferSizeMaxGrowth ${NETLINK_BUFFER_MAX}`,
    '\tFilter From Userspace {',
    `\t\tProtocol Accept {\n${(opts.protocols ?? ['TCP', 'UDP']).map((p) => `\t\t\t${p}`).join('\n')}\n\t\t}`,
    `\t\tAddress Ignore {\n${ignored.map((a) => `\t\t\t${family(a)} ${a}`).join('\n')}\n\t\t}`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

/**
 * The control commands of `conntrackd -C conf <flag>`, as a failover script
 * uses them (see the Debian example primary-backup.sh).
 */
const CONTROL = {
  /** -c: write the external cache (states received from the peer) into the kernel table. */
  commit: '-c',
  /** -f: flush the internal and external caches. */
  flush: '-f',
  /** -R: resynchronize the internal cache with the kernel table. */
  resync: '-R',
  /** -n: ask the peer to send its whole internal cache (a bulk send). */
  request: '-n',
  /** -B: send the whole internal cache to the peer. */
  bulkSend: '-B',
  /** -s: statistics (also the readiness probe). */
  stats: '-s',
} as const;

export type ControlCommand = keyof typeof CONTROL;

/** `conntrackd -C conf <flag>` as argv: what a failover script (e.g. keepalived's notify script) runs. */
export function controlArgv(config: string, cmd: ControlCommand): string[] {
  return [CONNTRACKD, '-C', config, CONTROL[cmd]];
}

export class Conntrackd {
  private constructor(
    private readonly lab: Lab,
    readonly host: string,
    readonly paths: ConntrackdPaths,
    private readonly proc: LabProcess,
  ) {}

  /** Writes the configuration and starts conntrackd in the host's namespace; resolves once it answers on its socket. */
  static async start(lab: Lab, opts: ConntrackdOptions): Promise<Conntrackd> {
    const paths = conntrackdPaths(join(lab.tmpDir, `conntrackd-${opts.host}-${opts.link.dev}`));
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.config, conntrackdConfig(opts, paths));
    const proc = lab.spawn(opts.host, [CONNTRACKD, '-C', paths.config], { logFile: paths.console });
    const d = new Conntrackd(lab, opts.host, paths, proc);
    try {
      await waitFor(
        async () => {
          if (!proc.running) throw new Error(`conntrackd on ${opts.host} exited (${JSON.stringify(proc.exit)}): ${d.logTail()}`);
          return existsSync(paths.socket) && (await d.control('stats')).code === 0;
        },
        { timeoutMs: 10_000, intervalMs: 50, what: `conntrackd on ${opts.host} to answer on ${paths.socket}` },
      );
    } catch (err) {
      await proc.stop();
      throw err;
    }
    return d;
  }

  get pid(): number {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc.running;
  }

  commit(): Promise<string> {
    return this.controlChecked('commit');
  }

  flush(): Promise<string> {
    return this.controlChecked('flush');
  }

  resync(): Promise<string> {
    return this.controlChecked('resync');
  }

  request(): Promise<string> {
    return this.controlChecked('request');
  }

  bulkSend(): Promise<string> {
    return this.controlChecked('bulkSend');
  }

  /** The daemon's statistics (`conntrackd -s`) as text. */
  stats(): Promise<string> {
    return this.controlChecked('stats');
  }

  /**
   * CPU time the daemon has used, in ns (/proc/<pid>/schedstat: ns
   * resolution, where /proc/<pid>/stat counts 10 ms ticks). conntrackd is
   * single-threaded, so its main thread's time is all of it.
   */
  cpuNs(): number {
    const path = `/proc/${this.pid}/schedstat`;
    const ns = Number(readFileSync(path, 'utf8').split(' ')[0]);
    if (!Number.isFinite(ns)) throw new Error(`${path}: no run time in ${readFileSync(path, 'utf8')}`);
    return ns;
  }

  /** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
  rssBytes(): number {
    return residentBytes(this.pid);
  }

  /** The last lines of the daemon's log, for error messages. */
  logTail(lines = 10): string {
    const text = existsSync(this.paths.console) ? readFileSync(this.paths.console, 'utf8') : '';
    return text.trim().split('\n').slice(-lines).join('\n');
  }

  /** kill -9 (a crash: the lock file and socket stay behind); resolves once it is gone. */
  async kill(): Promise<void> {
    this.proc.signal('SIGKILL');
    await this.proc.exited;
  }

  /** SIGTERM (conntrackd removes its lock file and socket), SIGKILL after a grace period. */
  stop(): Promise<void> {
    return this.proc.stop();
  }

  /** The command talks to the daemon over its UNIX socket; it runs in the daemon's namespace all the same. */
  private control(cmd: ControlCommand): Promise<RunResult> {
    return this.lab.exec(this.host, controlArgv(this.paths.config, cmd), { timeoutMs: 30_000 });
  }

  private async controlChecked(cmd: ControlCommand): Promise<string> {
    const r = await this.control(cmd);
    if (r.code !== 0) throw new Error(`conntrackd on ${this.host}: ${CONTROL[cmd]} (${cmd}) exited ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim()}; log: ${this.logTail()}`);
    return r.stdout;
  }
}
