/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Ring-buffer records from the XDP program to the controller.
 *
 * Two rings keep the two feeds apart: sw_punt_ring carries whole packets
 * (first packets of new flows, helper triggers) and can be flooded by an
 * attacker; sw_event_ring carries state changes, the feed cluster sync
 * consumes, and stays small and steady. A SYN flood therefore cannot crowd
 * out state-change events.
 */
#ifndef SYNCWALL_EVENT_TYPES_H
#define SYNCWALL_EVENT_TYPES_H

#include <linux/types.h>
#include "flow_types.h"

enum event_type {
	EV_PUNT = 1,	/* a packet with no entry that may open a flow */
	EV_HELPER = 2,	/* a packet of a helper-enabled flow the helper must see */
	EV_STATE = 3,	/* a flow changed state */
	EV_FLOW_MISS = 4,	/* cluster: a mid-stream packet of an owned bucket with no entry */
};

/* Largest packet a punt carries whole: 1500-byte MTU + Ethernet + 2 VLAN tags. */
#define SW_PUNT_DATA_MAX 1536
/* Most first packets (SYN, DNS query, echo request) fit a small record. */
#define SW_PUNT_DATA_SMALL 192

/*
 * Header of a punt record; cap_len packet bytes (from the Ethernet header)
 * follow it. The data plane has already parsed the packet: key and
 * src_is_a describe the flow, so the controller decides without parsing.
 */
struct punt_meta {
	__u16 type;		/* EV_PUNT or EV_HELPER */
	__u8 src_is_a;		/* the packet's source is endpoint A of key */
	__u8 icmp_type;		/* ICMP/ICMPv6 type, 0 otherwise */
	__u32 ifindex;		/* ingress interface */
	__u64 ts_ns;		/* bpf_ktime_get_ns() at XDP */
	__u32 pkt_len;		/* length of the frame */
	__u16 cap_len;		/* bytes that follow (== pkt_len) */
	__u16 l3_off;		/* offset of the IP header in the frame */
	__u16 l4_off;		/* offset of the L4 header in the frame */
	__u8 icmp_code;
	__u8 reserved0;
	__u32 bucket;		/* cluster bucket of the flow (bpf/lib/bucket.h) */
	struct flow_key key;
};
_Static_assert(sizeof(struct punt_meta) == 72, "punt_meta layout");

struct punt_small {
	struct punt_meta meta;
	__u8 data[SW_PUNT_DATA_SMALL];
};

struct punt_full {
	struct punt_meta meta;
	__u8 data[SW_PUNT_DATA_MAX];
};

/* A flow changed state in the data plane. Never one per packet. */
struct state_event {
	__u16 type;		/* EV_STATE */
	__u8 old_state;		/* enum flow_state */
	__u8 new_state;
	__u32 version;		/* entry version after the change */
	__u64 ts_ns;
	struct flow_key key;
	__u32 rule_id;
	__u8 flags;		/* entry flags after the change */
	__u8 reserved0;
	__u16 bucket;		/* cluster bucket of the flow */
};
_Static_assert(sizeof(struct state_event) == 64, "state_event layout");

#endif /* SYNCWALL_EVENT_TYPES_H */
