// Network-namespace labs: builds a topology (topology.ts) under a unique
// prefix, runs commands and daemons inside its namespaces, and removes
// everything again, also what an interrupted earlier run left behind.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, type DaemonOptions, runCli, type CliResult } from './daemon.js';
import { type LabProcess, ProcessTracker, run, runChecked, type RunOptions, type RunResult, type SpawnOptions } from './processes.js';
import { waitFor } from './poll.js';
import { BPFFS_ROOT, LAB_RUN_DIR, REPO_ROOT } from './paths.js';
import type { LinkEnd, Topology } from './topology.js';

/** The bare XDP_PASS program (bench/xdp_pass.bpf.c, built by `make build`). */
const XDP_PASS_OBJECT = join(REPO_ROOT, 'build/xdp_pass.bpf.o');

/** Every lab prefix: `sw` and four hex digits. */
const PREFIX_PATTERN = /^sw[0-9a-f]{4}$/;
const IFNAMSIZ_MAX = 15;

export class LabSetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LabSetupError';
  }
}

export interface LabOptions {
  topology: Topology;
}

export interface LabSpawnOptions extends SpawnOptions {
  /**
   * Give the process a /sys that shows its namespace's devices (as on a
   * real node), with the host's bpffs still at /sys/fs/bpf.
   */
  ownSysfs?: boolean;
}

/**
 * argv in a private mount namespace with sysfs mounted afresh, which then
 * shows the devices of the network namespace it runs in (as `ip netns exec`
 * does), and the bpffs moved over from the old /sys, so pins stay shared
 * with the host. Every step execs: the pid is the program's own.
 */
function withNamespaceSysfs(argv: readonly string[]): string[] {
  const script = [
    'set -e',
    'keep=$(mktemp -d)',
    'mount --bind /sys/fs/bpf "$keep"',
    'mount -t sysfs sysfs /sys',
    'mount --move "$keep" /sys/fs/bpf',
    'rmdir "$keep"',
    'exec "$@"',
  ].join('; ');
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', ...argv];
}

export interface FirewallInterface {
  name: string;
  zone: string;
}

export class Lab {
  readonly tracker = new ProcessTracker();
  readonly daemons: Daemon[] = [];

  constructor(
    readonly prefix: string,
    readonly topology: Topology,
    readonly tmpDir: string,
  ) {}

  /** The namespace of a topology host. */
  ns(host: string): string {
    if (!this.topology.hosts.some((h) => h.name === host)) throw new Error(`no host ${host} in this lab`);
    return `${this.prefix}-${host}`;
  }

  /** The device name of a link end (unique within the lab). */
  dev(end: Pick<LinkEnd, 'dev'>): string {
    return `${this.prefix}-${end.dev}`;
  }

  /** The interfaces of a firewall host with their zones, in topology order (sync interfaces are not filtered). */
  firewallInterfaces(host: string): FirewallInterface[] {
    return this.topology.links
      .flatMap((l) => [l.a, l.b])
      .filter((end) => end.host === host && !end.sync)
      .map((end) => {
        if (!end.zone) throw new Error(`interface ${end.dev} of firewall ${host} has no zone`);
        return { name: this.dev(end), zone: end.zone };
      });
  }

  exec(host: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(this.inNs(host, argv), { cwd: REPO_ROOT, ...opts });
  }

  execChecked(host: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return runChecked(this.inNs(host, argv), { cwd: REPO_ROOT, ...opts });
  }

  /** A long-lived process in a host's namespace, stopped at teardown at the latest. */
  spawn(host: string, argv: readonly string[], opts: LabSpawnOptions = {}): LabProcess {
    const { ownSysfs, ...spawnOpts } = opts;
    const inner = ownSysfs ? withNamespaceSysfs(argv) : argv;
    return this.tracker.spawn(this.inNs(host, inner), { cwd: REPO_ROOT, ...spawnOpts });
  }

  /**
   * argv run in a host's network namespace only. Not `ip netns exec`: that
   * also mounts a fresh sysfs over /sys, which hides the bpffs at
   * /sys/fs/bpf where syncwalld pins its maps and links.
   */
  private inNs(host: string, argv: readonly string[]): string[] {
    return ['nsenter', `--net=/run/netns/${this.ns(host)}`, '--', ...argv];
  }

  /** Every link end of a host, in topology order. */
  linkEnds(host: string): LinkEnd[] {
    return this.topology.links.flatMap((l) => [l.a, l.b]).filter((end) => end.host === host);
  }

  /** Takes a host's interfaces down (a node unplugged): all, or those with the given `dev` suffixes. */
  async linksDown(host: string, devs?: readonly string[]): Promise<void> {
    for (const end of this.selectEnds(host, devs)) await ipIn(this, host, ['link', 'set', this.dev(end), 'down']);
  }

  /** Brings a host's interfaces (all, or the given ones) up again and waits until they carry traffic. */
  async linksUp(host: string, devs?: readonly string[]): Promise<void> {
    const ends = this.selectEnds(host, devs);
    for (const end of ends) await ipIn(this, host, ['link', 'set', this.dev(end), 'up']);
    for (const end of ends) await waitUp(this, end);
    for (const end of ends) await enableGro(this, end);
  }

  private selectEnds(host: string, devs?: readonly string[]): LinkEnd[] {
    const ends = this.linkEnds(host).filter((end) => !devs || devs.includes(end.dev));
    if (devs && ends.length !== devs.length) throw new Error(`${host} has no interface among ${devs.join(', ')}`);
    return ends;
  }

  /** Whether an XDP program is attached to a device of a host. */
  async xdpAttached(host: string, dev: string): Promise<boolean> {
    const out = await runChecked(['ip', '-n', this.ns(host), '-j', 'link', 'show', 'dev', dev]);
    return (JSON.parse(out.stdout) as { xdp?: unknown }[])[0]?.xdp !== undefined;
  }

  /** Starts syncwalld on a firewall host (the only one, by default). */
  async startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
    const host = opts.host ?? this.onlyFirewall();
    const daemon = new Daemon(this, host, opts);
    this.daemons.push(daemon);
    await daemon.start();
    return daemon;
  }

  /** Runs the syncwall CLI against the daemon (the most recently started one by default). */
  cli(args: readonly string[], daemon?: Daemon): Promise<CliResult> {
    const target = daemon ?? this.daemons.at(-1);
    if (!target) throw new Error('lab.cli: no daemon started');
    return runCli(target.socketPath, args);
  }

  /** Daemon logs, for printing when a test fails. */
  diagnostics(): string {
    return this.daemons.map((d) => d.describe()).join('\n');
  }

  private onlyFirewall(): string {
    const firewalls = this.topology.hosts.filter((h) => h.role === 'firewall');
    const only = firewalls[0];
    if (!only || firewalls.length > 1) throw new Error('name the firewall host: the topology has ' + firewalls.length);
    return only.name;
  }

  async teardown(): Promise<void> {
    await this.tracker.stopAll();
    await removeLab(this.prefix);
    rmSync(this.tmpDir, { recursive: true, force: true });
  }
}

/** Builds a lab after removing stale ones; on any failure removes what it built. */
export async function createLab(opts: LabOptions): Promise<Lab> {
  await cleanupStale();
  const prefix = await freshPrefix();
  // Ownership is recorded before anything exists, so every namespace and pin
  // directory with this prefix is reclaimable if this process dies.
  mkdirSync(LAB_RUN_DIR, { recursive: true });
  writeFileSync(pidFile(prefix), `${process.pid}\n`);
  const lab = new Lab(prefix, opts.topology, mkdtempSync(join(tmpdir(), `syncwall-lab-${prefix}-`)));
  try {
    await build(lab);
  } catch (err) {
    await lab.teardown();
    throw new LabSetupError(`building lab ${prefix} failed`, { cause: err });
  }
  return lab;
}

async function build(lab: Lab): Promise<void> {
  const { topology } = lab;
  for (const host of topology.hosts) {
    await runChecked(['ip', 'netns', 'add', lab.ns(host.name)]);
    await ipIn(lab, host.name, ['link', 'set', 'lo', 'up']);
    // No DAD on interfaces created later: link-local addresses (the source
    // of neighbour solicitations) are usable at once, not seconds later.
    const sysctls = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'];
    if (host.role === 'firewall') sysctls.push('net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
    // A switch only bridges: its bridges and ports send nothing of their own (no RS, no MLD).
    if (host.role === 'switch') sysctls.push('net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    await lab.execChecked(host.name, ['sysctl', '-qw', ...sysctls]);
    for (const bridge of host.bridges ?? []) {
      const dev = lab.dev({ dev: bridge });
      if (dev.length > IFNAMSIZ_MAX) throw new LabSetupError(`bridge name ${dev} is longer than ${IFNAMSIZ_MAX}`);
      // No multicast snooping: frames to the multicast cluster MAC flood to every port.
      await ipIn(lab, host.name, ['link', 'add', 'name', dev, 'type', 'bridge', 'mcast_snooping', '0', 'stp_state', '0']);
      await ipIn(lab, host.name, ['link', 'set', dev, 'up']);
    }
  }
  for (const link of topology.links) {
    for (const end of [link.a, link.b]) {
      if (lab.dev(end).length > IFNAMSIZ_MAX) throw new LabSetupError(`interface name ${lab.dev(end)} is longer than ${IFNAMSIZ_MAX}`);
    }
    // Both ends are created directly in their namespaces: nothing appears in
    // the host's namespace, even briefly.
    await runChecked([
      'ip', 'link', 'add', 'name', lab.dev(link.a), 'netns', lab.ns(link.a.host),
      'type', 'veth', 'peer', 'name', lab.dev(link.b), 'netns', lab.ns(link.b.host),
    ]);
    for (const end of [link.a, link.b]) await configureEnd(lab, end);
  }
  // The kernel's linkwatch brings a new link's qdisc into service up to a
  // second after carrier-on; until then frames are dropped. Wait for it.
  for (const end of topology.links.flatMap((l) => [l.a, l.b])) await waitUp(lab, end);
  for (const end of topology.links.flatMap((l) => [l.a, l.b])) await enableGro(lab, end);
  for (const end of topology.links.flatMap((l) => [l.a, l.b]).filter((e) => e.bridge)) await attachXdpPass(lab, end);
  for (const host of topology.hosts) {
    for (const route of host.routes ?? []) {
      await ipIn(lab, host.name, [route.via.includes(':') ? '-6' : '-4', 'route', 'add', route.to, 'via', route.via]);
    }
  }
}

async function configureEnd(lab: Lab, end: LinkEnd): Promise<void> {
  const dev = lab.dev(end);
  const role = lab.topology.hosts.find((h) => h.name === end.host)?.role;
  if (role === 'endpoint') {
    // A local veth sender emits partial checksums (TX offload). The firewall
    // re-injects a punted first packet as received, so the lab's clients and
    // servers must put full checksums on the wire, as a real NIC delivers them.
    await lab.execChecked(end.host, ['ethtool', '-K', dev, 'tx', 'off']);
  }
  if (end.bridge) await ipIn(lab, end.host, ['link', 'set', dev, 'master', lab.dev({ dev: end.bridge })]);
  for (const addr of end.addrs) {
    // nodad: IPv6 addresses are usable at once instead of after DAD.
    const extra = addr.includes(':') ? ['nodad'] : [];
    await ipIn(lab, end.host, ['addr', 'add', addr, 'dev', dev, ...extra]);
  }
  await ipIn(lab, end.host, ['link', 'set', dev, 'up']);
}

/**
 * XDP_REDIRECT into a veth whose peer has neither an XDP program nor GRO
 * drops silently; GRO on every end makes each one a valid redirect target.
 * It is switched on once both ends are up: switched on while the device was
 * down, ethtool reported GRO on, yet frames redirected to its peer vanished
 * (kernel 6.18, for the end that came up second).
 */
async function enableGro(lab: Lab, end: LinkEnd): Promise<void> {
  await lab.execChecked(end.host, ['ethtool', '-K', lab.dev(end), 'gro', 'on']);
}

function waitUp(lab: Lab, end: LinkEnd): Promise<boolean> {
  return waitFor(async () => (await operState(lab, end)) === 'UP', { timeoutMs: 10_000, intervalMs: 50, what: `${lab.dev(end)} to come up` });
}

/**
 * A bridge port takes frames the way a NIC's wire does. On a veth, frames a
 * peer's XDP program sends back with XDP_TX (ARP/ND answers for the cluster
 * addresses) are queued on this end, but its NAPI is kicked only if it has
 * an XDP program of its own (GRO alone is not enough, kernel 6.18): without
 * one they wait until a redirected frame happens to flush them.
 */
async function attachXdpPass(lab: Lab, end: LinkEnd): Promise<void> {
  await ipIn(lab, end.host, ['link', 'set', 'dev', lab.dev(end), 'xdpdrv', 'obj', XDP_PASS_OBJECT, 'sec', 'xdp']);
}

async function operState(lab: Lab, end: LinkEnd): Promise<string | undefined> {
  const out = await ipIn(lab, end.host, ['-j', 'link', 'show', 'dev', lab.dev(end)]);
  return (JSON.parse(out.stdout) as { operstate?: string }[])[0]?.operstate;
}

function ipIn(lab: Lab, host: string, args: readonly string[]): Promise<RunResult> {
  return runChecked(['ip', '-n', lab.ns(host), ...args]);
}

async function freshPrefix(): Promise<string> {
  const taken = await labNamespaces();
  for (;;) {
    const prefix = `sw${randomBytes(2).toString('hex')}`;
    const used = taken.some((ns) => ns === prefix || ns.startsWith(`${prefix}-`)) || listDir(BPFFS_ROOT).includes(prefix) || listDir(LAB_RUN_DIR).includes(`${prefix}.pid`);
    if (!used) return prefix;
  }
}

function pidFile(prefix: string): string {
  return join(LAB_RUN_DIR, `${prefix}.pid`);
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

async function labNamespaces(): Promise<string[]> {
  const out = await runChecked(['ip', 'netns', 'list']);
  return out.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => PREFIX_PATTERN.test(name.split('-')[0] ?? ''));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM means the pid exists but belongs to someone else: treat as alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the labs whose owner process is gone: their processes, namespaces,
 * bpffs pins and pid files. Labs without a pid file are not ours to judge
 * and are left alone.
 */
export async function cleanupStale(): Promise<string[]> {
  const removed: string[] = [];
  for (const file of listDir(LAB_RUN_DIR)) {
    const prefix = file.replace(/\.pid$/, '');
    if (!PREFIX_PATTERN.test(prefix) || file === prefix) continue;
    const pid = Number.parseInt(readFileSync(join(LAB_RUN_DIR, file), 'utf8'), 10);
    if (Number.isInteger(pid) && isAlive(pid)) continue;
    await removeLab(prefix);
    for (const dir of listDir(tmpdir()).filter((d) => d.startsWith(`syncwall-lab-${prefix}-`))) {
      rmSync(join(tmpdir(), dir), { recursive: true, force: true });
    }
    removed.push(prefix);
  }
  return removed;
}

/** Ends the processes in a lab's namespaces, deletes them and its pins, then its pid file. */
async function removeLab(prefix: string): Promise<void> {
  const namespaces = (await labNamespaces()).filter((ns) => ns.startsWith(`${prefix}-`));
  for (const ns of namespaces) {
    // Only processes inside this lab's own namespaces, each by its pid.
    const pids = (await run(['ip', 'netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  for (const ns of namespaces) await run(['ip', 'netns', 'del', ns]);
  rmSync(join(BPFFS_ROOT, prefix), { recursive: true, force: true });
  rmSync(pidFile(prefix), { force: true });
}
