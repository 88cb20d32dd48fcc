// Writes the data plane's cluster maps: the bucket owner array (on every
// membership change: the only critical-path work of a failover), the
// controller's lease (renewed every heartbeat: the data plane stops serving
// the cluster when it lapses), the cluster addresses the data plane answers
// ARP/ND for, and each interface's own MAC (cluster-MAC frames handed to the
// stack get it as destination).
import { readFileSync } from 'node:fs';
import { mapUpdate, mapUpdateBatch } from '../bpf/libbpf.js';
import { ClusterAddrLayout, IfaceInfoLayout, SwFamily } from '../gen/layout.js';
import { addressBytes, macBytes } from '../net/address.js';
import { SW_BUCKETS } from './bucket.js';

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
  private readonly bucketKeys: Uint8Array;
  private readonly leaseKey = new Uint8Array(4);
  private readonly leaseValue = new Uint8Array(8);
  private readonly leaseView = new DataView(this.leaseValue.buffer);

  constructor(fds: ClusterMapFds) {
    this.fds = fds;
    const keys = new Uint32Array(SW_BUCKETS);
    for (let b = 0; b < SW_BUCKETS; b++) keys[b] = b;
    this.bucketKeys = new Uint8Array(keys.buffer);
  }

  /** Replaces the whole owner array in one batch (node id per bucket, 0 = nobody). */
  writeOwners(owner: Uint32Array): void {
    mapUpdateBatch(this.fds.bucketOwnerFd, this.bucketKeys, new Uint8Array(owner.buffer, owner.byteOffset, SW_BUCKETS * 4), SW_BUCKETS);
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
