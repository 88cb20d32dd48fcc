/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Load sharing between cluster nodes (docs/CLUSTER.md). Frames to the
 * cluster MAC reach every node; each forwards only the flows of the buckets
 * it owns (sw_bucket_owner). Frames to a node's own MAC are its own business
 * and not bucket-filtered. All of it only with DPF_CLUSTER, which the
 * verifier sees as a constant: a single node pays nothing for it.
 */
#ifndef SYNCWALL_CLUSTER_H
#define SYNCWALL_CLUSTER_H

#include <linux/if_ether.h>
#include "maps.h"
#include "bucket.h"

static __always_inline int cluster_enabled(void)
{
	return !!(sw_cfg.flags & DPF_CLUSTER);
}

/* The frame is addressed to the cluster MAC, so every node received it. */
static __always_inline int to_cluster_mac(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 diff = 0;

	if ((void *)(eth + 1) > data_end)
		return 0;
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		diff |= eth->h_dest[i] ^ sw_cfg.cluster_mac[i];
	return diff == 0;
}

/* The controller's lease (sw_cluster_lease) has not lapsed. */
static __always_inline int controller_alive(void)
{
	__u32 key = 0;
	__u64 *expires = bpf_map_lookup_elem(&sw_cluster_lease, &key);

	return expires && bpf_ktime_get_coarse_ns() < *expires;
}

/* The bucket's owner record if this node owns it, else NULL. */
static __always_inline const struct bucket_owner *bucket_owned(__u32 bucket)
{
	const struct bucket_owner *o = bpf_map_lookup_elem(&sw_bucket_owner, &bucket);

	return o && o->node == sw_cfg.node_id ? o : NULL;
}

static __always_inline int bucket_is_mine(__u32 bucket)
{
	return bucket_owned(bucket) != NULL;
}

/*
 * An entry last seen before this node (re)gained its bucket missed the
 * packets another node forwarded meanwhile: its windows may be behind the
 * connection (an ACK for data it never saw would be dropped, and a
 * ping-pong connection would never recover). Re-learn them from the next
 * packet of each direction, once.
 */
static __always_inline void distrust_if_stale(struct flow_entry *e, const struct bucket_owner *o)
{
	if (e->last_seen_ns >= o->since_ns)
		return;
	e->win[0].flags |= TCPW_F_UNTRUSTED;
	e->win[1].flags |= TCPW_F_UNTRUSTED;
	e->last_seen_ns = o->since_ns;
}

/*
 * A cluster-MAC frame is going to the stack: address it to the ingress
 * interface's own MAC, since the stack does not forward frames sent to a
 * multicast MAC. Without sw_ifaces data the frame is left as it is.
 */
static __always_inline void cluster_frame_to_host(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct ethhdr *eth = data;
	struct iface_info *iface;

	if ((void *)(eth + 1) > data_end)
		return;
	iface = bpf_map_lookup_elem(&sw_ifaces, &ifindex);
	if (iface)
		__builtin_memcpy(eth->h_dest, iface->mac, ETH_ALEN);
}

#endif /* SYNCWALL_CLUSTER_H */
