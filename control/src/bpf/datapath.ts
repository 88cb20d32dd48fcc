// Loads the XDP object with the configured map sizes and settings, pins its
// maps under bpffs and attaches it to the interfaces through pinned BPF links.
//
// Pinning is what makes a daemon restart hitless: a restarted syncwalld opens
// the pinned maps (the live connection table) and atomically swaps its freshly
// loaded program into the existing links, so established flows never leave
// the fast path. Only `syncwalld detach` removes links and pins.
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  BpfError,
  BpfObject,
  closeFd,
  ifNameToIndex,
  linkUpdate,
  objGet,
  objPin,
  xdpLinkCreate,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_SKB_MODE,
} from './libbpf.js';
import { INSTALL_ROOT } from '../install-files.js';
import { DpConfigFlag, DpConfigLayout, MapName, ProgName, RodataVar } from '../gen/layout.js';

export interface DatapathInterface {
  name: string;
  zone: string;
}

export interface DatapathOptions {
  /** Directory for pins: <bpffs>/<instance>. */
  pinDir: string;
  interfaces: DatapathInterface[];
  xdpMode: 'native' | 'generic';
  connections: number;
  puntRate: number;
  puntBurst: number;
  lastSeenGranularityNs: bigint;
  fastForward: boolean;
  nodeId: number;
  /** Cluster member: sets DPF_CLUSTER and the shared cluster MAC (6 bytes). */
  cluster?: { mac: Uint8Array };
  /** Defaults to build/syncwall.bpf.o of this checkout. */
  objectPath?: string;
}

export interface AttachedInterface extends DatapathInterface {
  ifindex: number;
}

/** Raised when the data plane cannot be brought up; names what and why. */
export class DatapathError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DatapathError';
  }
}

const BPFFS_MAGIC = 0xcafe4a11;
const PINNED_MAPS = [
  MapName.sw_conns,
  MapName.sw_counters,
  MapName.sw_punt_ring,
  MapName.sw_event_ring,
  MapName.sw_punt_bucket,
] as const;

export function defaultObjectPath(): string {
  return join(INSTALL_ROOT, 'build', 'syncwall.bpf.o');
}

/** The loaded, attached data plane: map and program fds for the controller. */
export class Datapath {
  readonly interfaces: AttachedInterface[];
  readonly mainProgFd: number;
  /** xdp_syncwall without the helper checks: re-injects packets a helper held. */
  readonly releaseProgFd: number;
  readonly txProgFd: number;
  readonly connsFd: number;
  readonly countersFd: number;
  readonly puntRingFd: number;
  readonly puntRingSize: number;
  readonly eventRingFd: number;
  readonly eventRingSize: number;
  readonly capacity: number;
  /**
   * Cluster maps (written by cluster/datapath-cluster.ts). Not pinned: a
   * (re)started daemon begins owning no bucket until it has joined, while
   * the peers serve its buckets.
   */
  readonly bucketOwnerFd: number;
  readonly clusterAddrsFd: number;
  readonly ifacesFd: number;
  readonly leaseFd: number;
  private readonly object: BpfObject;
  private readonly linkFds: number[];

  private constructor(object: BpfObject, interfaces: AttachedInterface[], linkFds: number[], capacity: number) {
    this.object = object;
    this.interfaces = interfaces;
    this.linkFds = linkFds;
    this.capacity = capacity;
    this.mainProgFd = object.programFd(ProgName.xdp_syncwall);
    this.releaseProgFd = object.programFd(ProgName.xdp_syncwall_release);
    this.txProgFd = object.programFd(ProgName.xdp_tx_out);
    this.connsFd = object.mapFd(MapName.sw_conns);
    this.countersFd = object.mapFd(MapName.sw_counters);
    this.puntRingFd = object.mapFd(MapName.sw_punt_ring);
    this.puntRingSize = object.mapMaxEntries(MapName.sw_punt_ring);
    this.eventRingFd = object.mapFd(MapName.sw_event_ring);
    this.eventRingSize = object.mapMaxEntries(MapName.sw_event_ring);
    this.bucketOwnerFd = object.mapFd(MapName.sw_bucket_owner);
    this.clusterAddrsFd = object.mapFd(MapName.sw_cluster_addrs);
    this.ifacesFd = object.mapFd(MapName.sw_ifaces);
    this.leaseFd = object.mapFd(MapName.sw_cluster_lease);
  }

  /** Loads the object (reusing pinned maps) without attaching it anywhere. */
  static load(opts: DatapathOptions): { object: BpfObject; capacity: number } {
    const objectPath = opts.objectPath ?? defaultObjectPath();
    if (!existsSync(objectPath)) throw new DatapathError(`XDP object ${objectPath} is missing: run make`);
    ensurePinDir(opts.pinDir);
    const object = BpfObject.open(objectPath);
    try {
      object.setMapMaxEntries(MapName.sw_conns, opts.connections);
      for (const map of PINNED_MAPS) object.setMapPinPath(map, join(opts.pinDir, map));
      writeDpConfig(object.rodata(), opts);
      try {
        object.load();
      } catch (err) {
        if (err instanceof BpfError && err.code === 'EINVAL' && existsSync(join(opts.pinDir, MapName.sw_conns))) {
          throw new DatapathError(
            `cannot reuse the maps pinned in ${opts.pinDir} (was tables.connections or the object changed?); ` +
              `run 'syncwalld detach' to start with an empty table`,
            { cause: err },
          );
        }
        throw err;
      }
      return { object, capacity: opts.connections };
    } catch (err) {
      object.close();
      throw err;
    }
  }

  /** Loads the object and attaches it to every configured interface. */
  static open(opts: DatapathOptions): Datapath {
    const interfaces = opts.interfaces.map((i) => ({ ...i, ifindex: interfaceIndex(i.name) }));
    const { object, capacity } = Datapath.load(opts);
    const progFd = object.programFd(ProgName.xdp_syncwall);
    const linkFds: number[] = [];
    try {
      for (const iface of interfaces) linkFds.push(attach(progFd, iface, opts));
    } catch (err) {
      for (const fd of linkFds) closeFd(fd);
      object.close();
      throw err;
    }
    return new Datapath(object, interfaces, linkFds, capacity);
  }

  /** Releases this process's handles. Links and maps stay pinned: the fast path keeps running. */
  close(): void {
    for (const fd of this.linkFds) closeFd(fd);
    this.linkFds.length = 0;
    this.object.close();
  }
}

/** Detaches the program from every interface and removes all pins of an instance. */
export function detach(pinDir: string): string[] {
  if (!existsSync(pinDir)) return [];
  const removed = readdirSync(pinDir);
  // Unpinning a link drops its last reference, which detaches the program.
  for (const name of removed) unlinkSync(join(pinDir, name));
  rmSync(pinDir, { recursive: true, force: true });
  return removed;
}

function interfaceIndex(name: string): number {
  try {
    return ifNameToIndex(name);
  } catch (err) {
    throw new DatapathError(`interface ${name} does not exist`, { cause: err });
  }
}

/**
 * Creates the pin directory on a bpffs mount. The nearest existing ancestor
 * is checked first: pins anywhere else would not survive as pins, and under
 * `ip netns exec` /sys/fs/bpf is a plain sysfs directory.
 */
function ensurePinDir(pinDir: string): void {
  let existing = pinDir;
  while (!existsSync(existing)) existing = dirname(existing);
  if (statfsSync(existing).type !== BPFFS_MAGIC) {
    throw new DatapathError(
      `${pinDir} is not on a bpffs mount (${existing} is not bpffs): mount one with 'mount -t bpf bpf <dir>' ` +
        `or point 'bpffs' in the config at one`,
    );
  }
  mkdirSync(pinDir, { recursive: true, mode: 0o700 });
}

function writeDpConfig(rodata: Buffer, opts: DatapathOptions): void {
  const base = RodataVar.sw_cfg.offset;
  const f = DpConfigLayout.fields;
  rodata.writeBigUInt64LE(BigInt(opts.puntRate), base + f.punt_rate.offset);
  rodata.writeBigUInt64LE(BigInt(opts.puntBurst), base + f.punt_burst.offset);
  rodata.writeBigUInt64LE(opts.lastSeenGranularityNs, base + f.last_seen_gran_ns.offset);
  rodata.writeUInt32LE(opts.nodeId, base + f.node_id.offset);
  const flags = (opts.fastForward ? DpConfigFlag.DPF_FAST_FORWARD : 0) | (opts.cluster ? DpConfigFlag.DPF_CLUSTER : 0);
  rodata.writeUInt32LE(flags, base + f.flags.offset);
  if (opts.cluster) rodata.set(opts.cluster.mac.subarray(0, f.cluster_mac.size), base + f.cluster_mac.offset);
}

function linkPinPath(pinDir: string, ifname: string): string {
  return join(pinDir, `link_${ifname}`);
}

/** Swaps the program into the interface's pinned link, or creates and pins a new link. */
function attach(progFd: number, iface: AttachedInterface, opts: DatapathOptions): number {
  const pin = linkPinPath(opts.pinDir, iface.name);
  if (existsSync(pin)) {
    const linkFd = objGet(pin);
    try {
      linkUpdate(linkFd, progFd);
      return linkFd;
    } catch (err) {
      closeFd(linkFd);
      // ENOLINK: the interface behind the old link went away; start a new link.
      if (!(err instanceof BpfError && err.code === 'ENOLINK')) throw err;
      unlinkSync(pin);
    }
  }
  const flags = opts.xdpMode === 'generic' ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  let linkFd: number;
  try {
    linkFd = xdpLinkCreate(progFd, iface.ifindex, flags);
  } catch (err) {
    const why = err instanceof BpfError && err.code === 'EBUSY' ? 'another XDP program is attached' : String(err);
    throw new DatapathError(`cannot attach XDP (${opts.xdpMode}) to ${iface.name}: ${why}`, { cause: err });
  }
  objPin(linkFd, pin);
  return linkFd;
}
