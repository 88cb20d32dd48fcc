/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Load-time settings and per-CPU counters shared by the XDP program and the
 * controller.
 */
#ifndef SYNCWALL_DP_CONFIG_TYPES_H
#define SYNCWALL_DP_CONFIG_TYPES_H

#include <linux/types.h>

enum dp_config_flag {
	DPF_FAST_FORWARD = 1 << 0,	/* bpf_fib_lookup + redirect for accepted packets */
	DPF_CLUSTER = 1 << 1,		/* cluster member: buckets, cluster MAC, ARP/ND for cluster addresses */
};

/* Flows are spread over this many buckets (sw_bucket_owner). */
#define SW_BUCKETS 1024

/*
 * Written by the controller into the object's .rodata before load
 * (const volatile struct dp_config sw_cfg), so the verifier sees constants.
 */
struct dp_config {
	__u64 punt_rate;		/* punts per second, per CPU */
	__u64 punt_burst;		/* token bucket depth, per CPU */
	__u64 last_seen_gran_ns;	/* refresh last_seen_ns at most this often */
	__u32 node_id;			/* this cluster node; 0 single node */
	__u32 flags;			/* enum dp_config_flag */
	__u8 cluster_mac[6];		/* frames to this MAC are shared by all nodes */
	__u8 reserved0[2];
};
_Static_assert(sizeof(struct dp_config) == 40, "dp_config layout");

/*
 * sw_bucket_owner value. since_ns (CLOCK_MONOTONIC): when this node last
 * became the bucket's owner. An entry not seen since then missed whatever
 * another node forwarded meanwhile, so its windows are re-learned from its
 * next packet (a replica's, or this node's own after its lease lapsed and a
 * peer served the bucket for a while).
 */
struct bucket_owner {
	__u32 node;		/* owning node id; 0: nobody */
	__u32 reserved0;
	__u64 since_ns;
};
_Static_assert(sizeof(struct bucket_owner) == 16, "bucket_owner layout");

/* sw_cluster_addrs key: an address the cluster answers ARP/ND for. */
struct cluster_addr {
	__u8 addr[16];		/* IPv4 in the first 4 bytes */
	__u32 ifindex;		/* interface it is answered on */
	__u8 family;		/* enum sw_family */
	__u8 reserved0[3];
};
_Static_assert(sizeof(struct cluster_addr) == 24, "cluster_addr layout");

/* sw_ifaces value: what the data plane needs to know about an attached interface. */
struct iface_info {
	__u8 mac[6];		/* the interface's own MAC */
	__u8 reserved0[2];
};
_Static_assert(sizeof(struct iface_info) == 8, "iface_info layout");

/* Per-CPU token bucket that limits punts. */
struct punt_bucket {
	__u64 tokens;		/* scaled by SW_TOKEN_SCALE */
	__u64 last_ns;
};
_Static_assert(sizeof(struct punt_bucket) == 16, "punt_bucket layout");

#define SW_TOKEN_SCALE 1000000000ULL

/*
 * Index of each per-CPU counter in sw_counters: one per verdict and drop
 * reason. Append only; the controller reads the names from the object's BTF.
 */
enum sw_counter {
	CNT_RX = 0,			/* frames seen */
	CNT_PASS_NON_IP,		/* ARP, LLDP, ...: to the stack untouched */
	CNT_PASS_ND,			/* IPv6 neighbour discovery / router messages */
	CNT_PASS_LOCAL,			/* tracked, destined to this host */
	CNT_FWD_FAST,			/* tracked, forwarded by XDP redirect */
	CNT_FWD_STACK,			/* tracked, handed to the stack to forward */
	CNT_HIT,			/* packets that matched an entry */
	CNT_RELATED_ICMP,		/* ICMP errors quoting a tracked flow */
	CNT_PUNT_NEW,			/* first packets sent to the controller */
	CNT_PUNT_HELPER,		/* helper packets sent to the controller */
	CNT_STATE_EVENT,		/* state-change events emitted */
	CNT_DROP_PUNT_LIMIT,		/* punt token bucket empty */
	CNT_DROP_PUNT_RING_FULL,	/* punt ring had no room */
	CNT_DROP_PUNT_TOO_BIG,		/* frame larger than SW_PUNT_DATA_MAX */
	CNT_DROP_EVENT_RING_FULL,	/* state event lost (the change itself applied) */
	CNT_DROP_MALFORMED,		/* truncated or bogus headers */
	CNT_DROP_FRAGMENT,		/* IP fragments are not forwarded */
	CNT_DROP_NO_ENTRY,		/* cannot open a flow and has no entry */
	CNT_DROP_TCP_FLAGS,		/* invalid TCP flag combination */
	CNT_DROP_TCP_STATE,		/* not allowed by the TCP state machine */
	CNT_DROP_OUT_OF_WINDOW,		/* segment outside the tracked window */
	CNT_DROP_RST_INVALID,		/* RST outside the window */
	CNT_DROP_ICMP_UNRELATED,	/* ICMP error quoting no tracked flow */
	CNT_PASS_TTL,			/* hop limit exhausted: the stack answers with ICMP */
	CNT_DROP_NOT_OWNER,		/* cluster: another node owns the flow's bucket */
	CNT_PUNT_FLOW_MISS,		/* cluster: mid-stream packet sent to fetch its state */
	CNT_CLUSTER_ARP_REPLY,		/* cluster: ARP/ND answered for a cluster address */
	CNT_DROP_NO_CONTROLLER,		/* cluster: the controller's lease lapsed (dead or stalled) */
	CNT__MAX,
};

#endif /* SYNCWALL_DP_CONFIG_TYPES_H */
