// Writes the data plane's cluster maps: the bucket owner array (on every
// membership change: the only critical-path work of a failover), the cluster
// addresses the data plane answers ARP/ND for, and each interface's own MAC
// (cluster-MAC frames handed to the stack get it as destination).
import { readFileSync } from 'node:fs';
import { mapUpdateBatch } from '../bpf/libbpf.js';
import { SwFamily } from '../gen/layout.js';
import { addressBytes, macBytes } from '../net/address.js';
import { SW_BUCKETS } from './bucket.js';

// struct cluster_addr and struct iface_info (bpf/include/dp_config_types.h,
// sizes asserted there): { addr[16], ifindex u32, family u8, pad[3] } and
// { mac[6], pad[2] }.
const CLUSTER_ADDR_SIZE = 24;
const CLUSTER_ADDR_IFINDEX = 16;
const CLUSTER_ADDR_FAMILY = 20;
const IFACE_INFO_SIZE = 8;

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

  writeAddresses(addresses: readonly { ifindex: number; address: string }[]): void {
    const keys = new Uint8Array(addresses.length * CLUSTER_ADDR_SIZE);
    const view = new DataView(keys.buffer);
    addresses.forEach((a, i) => {
      const bytes = addressBytes(a.address);
      const off = i * CLUSTER_ADDR_SIZE;
      keys.set(bytes, off);
      view.setUint32(off + CLUSTER_ADDR_IFINDEX, a.ifindex, true);
      keys[off + CLUSTER_ADDR_FAMILY] = bytes.length === 4 ? SwFamily.SW_FAMILY_V4 : SwFamily.SW_FAMILY_V6;
    });
    mapUpdateBatch(this.fds.clusterAddrsFd, keys, new Uint8Array(addresses.length).fill(1), addresses.length);
  }

  writeInterfaces(interfaces: readonly { ifindex: number; mac: Uint8Array }[]): void {
    const keys = new Uint32Array(interfaces.length);
    const values = new Uint8Array(interfaces.length * IFACE_INFO_SIZE);
    interfaces.forEach((iface, i) => {
      keys[i] = iface.ifindex;
      values.set(iface.mac.subarray(0, 6), i * IFACE_INFO_SIZE);
    });
    mapUpdateBatch(this.fds.ifacesFd, new Uint8Array(keys.buffer), values, interfaces.length);
  }
}
