// Loads the real XDP object (build/syncwall.bpf.o) with a small connection
// table and no pinning, and runs frames through it with BPF_PROG_TEST_RUN.
// Shared by the packet tests and bench/xdp-cost.ts. Needs root.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flowEntry, flowKey, puntMeta, stateEvent, type FlowEntry, type FlowKey, type StateEvent } from '../../control/src/bpf/codec.js';
import { BPF_ANY, BpfObject, mapLookup, mapUpdate, numPossibleCpus, progTestRun } from '../../control/src/bpf/libbpf.js';
import { RingBufferConsumer } from '../../control/src/bpf/ringbuf.js';
import { SW_BUCKETS } from '../../control/src/cluster/bucket.js';
import { ClusterMaps, type ClusterMapFds } from '../../control/src/cluster/datapath-cluster.js';
import { DpConfigFlag, DpConfigLayout, MapName, ProgName, PuntMetaLayout, RodataVar, StateEventLayout, SwCounter } from '../../control/src/gen/layout.js';
import { addressBytes, macBytes } from '../../control/src/net/address.js';

export const OBJECT_PATH = resolve(fileURLToPath(new URL('../..', import.meta.url)), 'build/syncwall.bpf.o');

export const XDP_ABORTED = 0;
export const XDP_DROP = 1;
export const XDP_PASS = 2;
export const XDP_TX = 3;
export const XDP_REDIRECT = 4;
export const VERDICT_NAMES = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'];
export const LOOPBACK_IFINDEX = 1;

export type CounterName = keyof typeof SwCounter;

export interface DataplaneOptions {
  /** sw_cfg fields; the defaults here make tests deterministic (no fast path, generous punts). */
  puntRate?: bigint;
  puntBurst?: bigint;
  lastSeenGranNs?: bigint;
  flags?: number;
  connEntries?: number;
  /** Data bytes of each ring (power of two, multiple of the page size). */
  puntRingSize?: number;
  eventRingSize?: number;
  /** Cluster settings (sw_cfg.node_id, sw_cfg.cluster_mac); DPF_CLUSTER goes in flags. */
  nodeId?: number;
  clusterMac?: string;
}

export interface RunResult {
  verdict: number;
  /** The frame as the program left it. */
  out: Uint8Array;
}

export interface Punt {
  type: number;
  srcIsA: boolean;
  icmpType: number;
  icmpCode: number;
  ifindex: number;
  pktLen: number;
  capLen: number;
  l3Off: number;
  l4Off: number;
  key: FlowKey;
  /** Cluster bucket the data plane computed for key. */
  bucket: number;
  frame: Uint8Array;
  /** Size of the record: which of punt_small/punt_full was used. */
  recordLen: number;
}

/** A state event with the cluster bucket the data plane computed for its key. */
export interface BucketedStateEvent extends StateEvent {
  bucket: number;
}

/** The two endpoints of a packet, as the test writes them. */
export interface Endpoints {
  family: 4 | 6;
  proto: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The normalized key of a packet and whether its source is endpoint A (the data plane's rule). */
export function normalizedKey(e: Endpoints): { key: FlowKey; srcIsA: boolean } {
  const s = addressBytes(e.src);
  const d = addressBytes(e.dst);
  const c = compareBytes(s, d);
  const srcIsA = c < 0 || (c === 0 && e.sport <= e.dport);
  const key: FlowKey = srcIsA
    ? { family: e.family, proto: e.proto, addrA: s, addrB: d, portA: e.sport, portB: e.dport }
    : { family: e.family, proto: e.proto, addrA: d, addrB: s, portA: e.dport, portB: e.sport };
  return { key, srcIsA };
}

const XDP_MD_SIZE = 24;

export class TestDataplane {
  readonly obj: BpfObject;
  readonly progFd: number;
  private readonly connsFd: number;
  private readonly countersFd: number;
  private readonly puntRing: RingBufferConsumer;
  private readonly eventRing: RingBufferConsumer;
  private punts: Punt[] = [];
  private events: BucketedStateEvent[] = [];
  private readonly ringErrors: unknown[] = [];
  /** The cluster node id the object was loaded as (0: single node). */
  private readonly nodeId: number;
  private clusterWriter: ClusterMaps | undefined;

  private constructor(obj: BpfObject, opts: DataplaneOptions) {
    this.obj = obj;
    this.nodeId = opts.nodeId ?? 0;
    this.progFd = obj.programFd(ProgName.xdp_syncwall);
    this.connsFd = obj.mapFd(MapName.sw_conns);
    this.countersFd = obj.mapFd(MapName.sw_counters);
    this.puntRing = new RingBufferConsumer({
      mapFd: obj.mapFd(MapName.sw_punt_ring),
      size: opts.puntRingSize ?? 1 << 20,
      onRecord: (buf, off, len) => this.punts.push(decodePunt(buf, off, len)),
      onError: (err) => this.ringErrors.push(err),
    });
    this.eventRing = new RingBufferConsumer({
      mapFd: obj.mapFd(MapName.sw_event_ring),
      size: opts.eventRingSize ?? 1 << 20,
      onRecord: (buf, off) => this.events.push({ ...stateEvent.decode(buf, off), bucket: u16le(buf, off + StateEventLayout.fields.bucket.offset) }),
      onError: (err) => this.ringErrors.push(err),
    });
  }

  static load(opts: DataplaneOptions = {}): TestDataplane {
    if (!existsSync(OBJECT_PATH)) throw new Error(`${OBJECT_PATH} is missing: run make bpf`);
    const obj = BpfObject.open(OBJECT_PATH);
    try {
      obj.setMapMaxEntries(MapName.sw_conns, opts.connEntries ?? 256);
      obj.setMapMaxEntries(MapName.sw_punt_ring, opts.puntRingSize ?? 1 << 20);
      obj.setMapMaxEntries(MapName.sw_event_ring, opts.eventRingSize ?? 1 << 20);
      const rodata = obj.rodata();
      const cfg = RodataVar.sw_cfg.offset;
      const f = DpConfigLayout.fields;
      rodata.writeBigUInt64LE(opts.puntRate ?? 1_000_000n, cfg + f.punt_rate.offset);
      rodata.writeBigUInt64LE(opts.puntBurst ?? 1_000_000n, cfg + f.punt_burst.offset);
      rodata.writeBigUInt64LE(opts.lastSeenGranNs ?? 1_000_000_000n, cfg + f.last_seen_gran_ns.offset);
      rodata.writeUInt32LE(opts.flags ?? 0, cfg + f.flags.offset);
      rodata.writeUInt32LE(opts.nodeId ?? 0, cfg + f.node_id.offset);
      if (opts.clusterMac !== undefined) rodata.set(macBytes(opts.clusterMac), cfg + f.cluster_mac.offset);
      obj.load();
      return new TestDataplane(obj, opts);
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  /** Runs the main program once on a copy of frame, as if received on ifindex. */
  run(frame: Uint8Array, ifindex = LOOPBACK_IFINDEX): RunResult {
    const ctx = Buffer.alloc(XDP_MD_SIZE);
    ctx.writeUInt32LE(frame.length, 4);
    ctx.writeUInt32LE(ifindex, 12);
    const dataOut = new Uint8Array(frame.length + 256);
    const r = progTestRun(this.progFd, { data: Uint8Array.from(frame), dataOut, ctx });
    return { verdict: r.retval, out: dataOut.slice(0, r.dataSizeOut) };
  }

  /** Per-CPU counter values by name. */
  countersPerCpu(): Map<CounterName, bigint[]> {
    const cpus = numPossibleCpus();
    const value = new Uint8Array(8 * cpus);
    const key = new Uint8Array(4);
    const dv = new DataView(value.buffer);
    const out = new Map<CounterName, bigint[]>();
    for (const [name, idx] of Object.entries(SwCounter) as [CounterName, number][]) {
      if (name === 'CNT__MAX') continue;
      new DataView(key.buffer).setUint32(0, idx, true);
      mapLookup(this.countersFd, key, value);
      out.set(name, Array.from({ length: cpus }, (_, c) => dv.getBigUint64(8 * c, true)));
    }
    return out;
  }

  /** Counter totals over all CPUs, only those that are not zero. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, perCpu] of this.countersPerCpu()) {
      const sum = perCpu.reduce((a, b) => a + b, 0n);
      if (sum !== 0n) out[name] = Number(sum);
    }
    return out;
  }

  /** Inserts what the controller inserts for an admitted flow (state FS_NONE). */
  admit(key: FlowKey, origIsA: boolean, ruleId = 7): void {
    const value = new Uint8Array(flowEntry.size);
    flowEntry.encodeNew(value, 0, {
      flags: origIsA ? 1 : 0,
      ruleId,
      helper: 0,
      ownerNode: 0,
      origIfindex: LOOPBACK_IFINDEX,
      createdNs: 1n,
    });
    this.putRaw(key, value);
  }

  put(key: FlowKey, entry: FlowEntry): void {
    const value = new Uint8Array(flowEntry.size);
    flowEntry.encode(value, 0, entry);
    this.putRaw(key, value);
  }

  private putRaw(key: FlowKey, value: Uint8Array): void {
    const k = new Uint8Array(flowKey.size);
    flowKey.write(k, 0, key);
    mapUpdate(this.connsFd, k, value, BPF_ANY);
  }

  entry(key: FlowKey): FlowEntry | undefined {
    const k = new Uint8Array(flowKey.size);
    const v = new Uint8Array(flowEntry.size);
    flowKey.write(k, 0, key);
    return mapLookup(this.connsFd, k, v) ? flowEntry.decode(v, 0) : undefined;
  }

  /** Punt records submitted since the last call. */
  takePunts(): Punt[] {
    while (this.puntRing.consume() > 0);
    this.throwRingErrors();
    const out = this.punts;
    this.punts = [];
    return out;
  }

  /** The cluster maps' fds, as a ClusterNode takes them. */
  clusterMapFds(): ClusterMapFds {
    return {
      bucketOwnerFd: this.obj.mapFd(MapName.sw_bucket_owner),
      clusterAddrsFd: this.obj.mapFd(MapName.sw_cluster_addrs),
      ifacesFd: this.obj.mapFd(MapName.sw_ifaces),
      leaseFd: this.obj.mapFd(MapName.sw_cluster_lease),
    };
  }

  /** The controller's writer of the cluster maps, over this object's maps (it remembers the owner array it wrote). */
  private clusterMaps(): ClusterMaps {
    this.clusterWriter ??= new ClusterMaps(this.clusterMapFds(), this.nodeId, () => process.hrtime.bigint());
    return this.clusterWriter;
  }

  /**
   * Cluster: sets the owner of each bucket (sw_bucket_owner; buckets this
   * node gains, or with `regainedAll` all it owns, are stamped now) and,
   * standing in for a live controller, grants a lease of an hour.
   */
  setBucketOwners(ownerOf: (bucket: number) => number, regainedAll = false): void {
    this.clusterMaps().writeOwners(Uint32Array.from({ length: SW_BUCKETS }, (_, b) => ownerOf(b)), regainedAll);
    this.setLease(process.hrtime.bigint() + 3_600_000_000_000n);
  }

  /** Cluster: the controller's lease runs until expiresNs (CLOCK_MONOTONIC; 0 never granted). */
  setLease(expiresNs: bigint): void {
    this.clusterMaps().writeLease(expiresNs);
  }

  /** Cluster: an address the cluster answers ARP/ND for on ifindex (sw_cluster_addrs). */
  addClusterAddr(addr: string, ifindex = LOOPBACK_IFINDEX): void {
    this.clusterMaps().writeAddresses([{ ifindex, address: addr }]);
  }

  /** Cluster: an interface's own MAC (sw_ifaces). */
  setIface(ifindex: number, mac: string): void {
    this.clusterMaps().writeInterfaces([{ ifindex, mac: macBytes(mac) }]);
  }

  /** State events submitted since the last call. */
  takeEvents(): BucketedStateEvent[] {
    while (this.eventRing.consume() > 0);
    this.throwRingErrors();
    const out = this.events;
    this.events = [];
    return out;
  }

  private throwRingErrors(): void {
    const err = this.ringErrors.shift();
    if (err !== undefined) throw err;
  }

  close(): void {
    this.puntRing.close();
    this.eventRing.close();
    this.obj.close();
  }
}

function decodePunt(buf: Uint8Array, off: number, len: number): Punt {
  const capLen = puntMeta.capLen(buf, off);
  const data = puntMeta.dataOffset(off);
  return {
    type: puntMeta.type(buf, off),
    srcIsA: puntMeta.srcIsA(buf, off),
    icmpType: puntMeta.icmpType(buf, off),
    icmpCode: puntMeta.icmpCode(buf, off),
    ifindex: puntMeta.ifindex(buf, off),
    pktLen: puntMeta.pktLen(buf, off),
    capLen,
    l3Off: puntMeta.l3Off(buf, off),
    l4Off: puntMeta.l4Off(buf, off),
    key: flowKey.read(buf, puntMeta.keyOffset(off)),
    bucket: u32le(buf, off + PuntMetaLayout.fields.bucket.offset),
    frame: buf.slice(data, data + capLen),
    recordLen: len,
  };
}

// punt_meta.bucket and state_event.bucket have no codec accessor yet: read them at their generated offsets
const u16le = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32le = (b: Uint8Array, o: number): number => (u16le(b, o) | (u16le(b, o + 2) << 16)) >>> 0;

export { DpConfigFlag };
