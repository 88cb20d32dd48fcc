// Writes the data plane's cluster maps: the bucket owner array (on every
// membership change: the only critical-path work of a failover), the
// controller's lease (renewed every heartbeat: the data plane stops serving
// the cluster when it lapses), the cluster addresses the data plane answers
// ARP/ND for, and each interface's own MAC (cluster-MAC frames handed to the
// stack get it as destination).
import { readFileSync } from 'node:fs';
import { mapUpdate, mapUpdateBatch } from '../bpf/libbpf.js';
import { BucketOwnerLayout, ClusterAddrLayout, IfaceInfoLayout, SwFamily } from '../gen/layout.js';
import { addressBytes, macBytes } from '../net/address.js';
import { SW_BUCKETS } from './bucket.js';

const BUCKET_OWNER_SIZE = BucketOwnerLayout.size;
const BUCKET_OWNER = BucketOwnerLayout.fields;
/**
 * A bucket's since_ns is set this far back: the data plane compares it with
 * last_seen_ns from its coarse clock, which runs up to a tick behind this
 * one, and an entry refreshed just after the change must not look older
 * than it (it would be re-learned again and again for that tick).
 */
const SINCE_MARGIN_NS = 10_000_000n;
const CLUSTER_ADDR_SIZE = ClusterAddrLayout.size;
const CLUSTER_ADDR = ClusterAddrLayout.fields;
const IFACE_INFO_SIZE = IfaceInfoLayout.size;
const IFACE_MAC = IfaceInfoLayout.fields.mac.offset;

export class ClusterMapsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ClusterMapsError';
  }
}

export interface ClusterMapFds {
  bucketOwnerFd: number;
  clusterAddrsFd: number;
  ifacesFd: number;
  leaseFd: number;
}

/** The MAC of a local interface, from sysfs. */
export function interfaceMac(name: string): Uint8Array {
  try {
    return macBytes(readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim());
  } catch (err) {
    throw new ClusterMapsError(`cannot read the MAC address of ${name}`, { cause: err });
  }
}

export class ClusterMaps {
  private readonly fds: ClusterMapFds;
  private readonly selfId: number;
  private readonly monotonicNs: () => bigint;
  private readonly bucketKeys: Uint8Array;
  /** The owner array as last written (struct bucket_owner per bucket). */
  private readonly owners = new Uint8Array(SW_BUCKETS * BUCKET_OWNER_SIZE);
  private readonly ownersView = new DataView(this.owners.buffer);
  private readonly leaseKey = new Uint8Array(4);
  private readonly leaseValue = new Uint8Array(8);
  private readonly leaseView = new DataView(this.leaseValue.buffer);

  constructor(fds: ClusterMapFds, selfId: number, monotonicNs: () => bigint) {
    this.fds = fds;
    this.selfId = selfId;
    this.monotonicNs = monotonicNs;
    const keys = new Uint32Array(SW_BUCKETS);
    for (let b = 0; b < SW_BUCKETS; b++) keys[b] = b;
    this.bucketKeys = new Uint8Array(keys.buffer);
  }

  /**
   * Replaces the whole owner array in one batch (node id per bucket, 0 =
   * nobody). Buckets this node gains are stamped with the time, so their
   * entries re-learn their windows; with `regainedAll` every bucket it owns
   * is (its lease lapsed: peers may have served them meanwhile).
   */
  writeOwners(owner: Uint32Array, regainedAll = false): void {
    const since = this.monotonicNs() - SINCE_MARGIN_NS;
    const v = this.ownersView;
    for (let b = 0; b < SW_BUCKETS; b++) {
      const off = b * BUCKET_OWNER_SIZE;
      const gained = owner[b] === this.selfId && (regainedAll || v.getUint32(off + BUCKET_OWNER.node.offset, true) !== this.selfId);
      if (gained) v.setBigUint64(off + BUCKET_OWNER.since_ns.offset, since, true);
      v.setUint32(off + BUCKET_OWNER.node.offset, owner[b]!, true);
    }
    mapUpdateBatch(this.fds.bucketOwnerFd, this.bucketKeys, this.owners, SW_BUCKETS);
  }

  /** The data plane serves the cluster until expiresNs (CLOCK_MONOTONIC). */
  writeLease(expiresNs: bigint): void {
    this.leaseView.setBigUint64(0, expiresNs, true);
    mapUpdate(this.fds.leaseFd, this.leaseKey, this.leaseValue);
  }

  writeAddresses(addresses: readonly { ifindex: number; address: string }[]): void {
    const keys = new Uint8Array(addresses.length * CLUSTER_ADDR_SIZE);
    const view = new DataView(keys.buffer);
    addresses.forEach((a, i) => {
      const bytes = addressBytes(a.address);
      const off = i * CLUSTER_ADDR_SIZE;
      keys.set(bytes, off + CLUSTER_ADDR.addr.offset);
      view.setUint32(off + CLUSTER_ADDR.ifindex.offset, a.ifindex, true);
      keys[off + CLUSTER_ADDR.family.offset] = bytes.length === 4 ? SwFamily.SW_FAMILY_V4 : SwFamily.SW_FAMILY_V6;
    });
    mapUpdateBatch(this.fds.clusterAddrsFd, keys, new Uint8Array(addresses.length).fill(1), addresses.length);
  }

  writeInterfaces(interfaces: readonly { ifindex: number; mac: Uint8Array }[]): void {
    const keys = new Uint32Array(interfaces.length);
    const values = new Uint8Array(interfaces.length * IFACE_INFO_SIZE);
    interfaces.forEach((iface, i) => {
      keys[i] = iface.ifindex;
      values.set(iface.mac.subarray(0, 6), i * IFACE_INFO_SIZE + IFACE_MAC);
    });
    mapUpdateBatch(this.fds.ifacesFd, new Uint8Array(keys.buffer), values, interfaces.length);
  }
}
