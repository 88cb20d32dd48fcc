/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The maps and load-time settings of the XDP program. The controller finds
 * maps by these names and writes sw_cfg into .rodata before load.
 */
#ifndef SYNCWALL_MAPS_H
#define SYNCWALL_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "flow_types.h"
#include "event_types.h"
#include "dp_config_types.h"

/*
 * The connection table. Only the controller inserts, so entries are
 * allocated on insert (BPF_F_NO_PREALLOC): a table sized for 1M flows
 * costs memory only for the flows it holds. The controller sets
 * max_entries from its config; the default here only serves tests.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct flow_entry);
} sw_conns SEC(".maps");

/* One counter per verdict and drop reason (enum sw_counter), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} sw_counters SEC(".maps");

/* Whole first packets for the controller: may be flooded, so kept apart. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} sw_punt_ring SEC(".maps");

/* State changes: small and steady, never crowded out by punts. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} sw_event_ring SEC(".maps");

/* Per-CPU token bucket in front of sw_punt_ring. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct punt_bucket);
} sw_punt_bucket SEC(".maps");

/* Cluster: bucket (bpf/lib/bucket.h) -> its owner and since when. Written by the controller. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SW_BUCKETS);
	__type(key, __u32);
	__type(value, struct bucket_owner);
} sw_bucket_owner SEC(".maps");

/*
 * Cluster: until when (bpf_ktime_get_coarse_ns, CLOCK_MONOTONIC) this node's
 * controller vouches for the buckets it owns; key 0 only, 0 = never. The
 * controller renews it every heartbeat for two failure timeouts. When the
 * controller dies (kill -9) or stalls, the peers declare the node failed
 * and take its buckets over after one; the lease lapses one later, so the
 * node's XDP program, still attached through its pinned link, stops serving
 * buckets that now have another owner.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sw_cluster_lease SEC(".maps");

/* Cluster: addresses the cluster answers ARP/ND for, per interface (value 1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct cluster_addr);
	__type(value, __u8);
} sw_cluster_addrs SEC(".maps");

/* Cluster: each attached interface's own MAC, by ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct iface_info);
} sw_ifaces SEC(".maps");

/* Load-time settings; the controller overwrites these defaults before load. */
const volatile struct dp_config sw_cfg = {
	.punt_rate = 20000,
	.punt_burst = 2000,
	.last_seen_gran_ns = 1000000000ULL,
	.node_id = 0,
	.flags = DPF_FAST_FORWARD,
};

#endif /* SYNCWALL_MAPS_H */
