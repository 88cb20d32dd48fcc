/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Connection-table types shared by the XDP program and the controller.
 *
 * Plain C only (no kernel includes beyond linux/types.h), explicit padding,
 * sizes asserted. The controller's codecs are checked against the BTF of the
 * built object (test/unit/layout.test.ts), so a change here that the
 * TypeScript side does not follow fails a test. Once shipped, fields are
 * never moved: retire them as reservedN instead.
 */
#ifndef SYNCWALL_FLOW_TYPES_H
#define SYNCWALL_FLOW_TYPES_H

#include <linux/types.h>

enum sw_family {
	SW_FAMILY_V4 = 4,
	SW_FAMILY_V6 = 6,
};

/*
 * Normalized tuple: endpoint A is the numerically smaller (address, port)
 * pair, so both directions of a flow build the same key. Which endpoint
 * opened the flow is kept in the entry (FLOW_F_ORIG_A).
 * IPv4 addresses occupy the first 4 bytes of addr_*, the rest is zero.
 * ICMP echo flows use the echo identifier as both ports; protocols without
 * ports (GRE, ESP, ...) use 0.
 */
struct flow_key {
	__u8 addr_a[16];
	__u8 addr_b[16];
	__be16 port_a;
	__be16 port_b;
	__u8 proto;	/* IPPROTO_* */
	__u8 family;	/* enum sw_family */
	__u16 reserved0;
};
_Static_assert(sizeof(struct flow_key) == 40, "flow_key layout");

/*
 * Flow states. TCP values follow netfilter's tcp_conntrack order so the
 * state table reads like the kernel's; the others are for flows without a
 * handshake (UDP, ICMP echo, untracked-protocol flows).
 */
enum flow_state {
	FS_NONE = 0,		/* admitted by the controller, no packet tracked yet */
	FS_SYN_SENT = 1,
	FS_SYN_RECV = 2,
	FS_ESTABLISHED = 3,
	FS_FIN_WAIT = 4,
	FS_CLOSE_WAIT = 5,
	FS_LAST_ACK = 6,
	FS_TIME_WAIT = 7,
	FS_CLOSE = 8,
	FS_SYN_SENT2 = 9,
	FS_UNREPLIED = 10,	/* non-TCP: only the originator has sent */
	FS_REPLIED = 11,	/* non-TCP: both sides have sent */
	FS_MAX = 12,
};

enum flow_flag {
	FLOW_F_ORIG_A = 1 << 0,		/* the originator is endpoint A of the key */
	FLOW_F_RELATED = 1 << 1,	/* admitted as related to another flow */
	FLOW_F_COMMON = 1 << 2,		/* cluster: common state, replicated to every node */
	FLOW_F_REMOTE = 1 << 3,		/* cluster: installed from a peer's replica */
	FLOW_F_HELD = 1 << 4,		/* helper: a command is held in the controller; every packet goes there behind it */
};

enum helper_id {
	HELPER_NONE = 0,
	HELPER_FTP = 1,
};

enum tcp_window_flag {
	TCPW_F_WINDOW_SCALE = 1 << 0,	/* the sender offered window scaling */
	TCPW_F_SACK_PERM = 1 << 1,	/* the sender offered SACK */
	TCPW_F_CLOSE_INIT = 1 << 2,	/* the sender sent the first FIN */
	TCPW_F_MAXACK_SET = 1 << 3,	/* td_maxack holds a value */
	TCPW_F_UNTRUSTED = 1 << 4,	/* window data came from a replica: re-learn from the next packet */
};

/* Per-direction sequence tracking, as netfilter's ip_ct_tcp_state. */
struct tcp_window {
	__u32 td_end;		/* max of seq + len */
	__u32 td_maxend;	/* max of ack + max(win, 1) */
	__u32 td_maxwin;	/* max(win) */
	__u32 td_maxack;	/* max of ack */
	__u8 td_scale;		/* window scale factor */
	__u8 flags;		/* enum tcp_window_flag */
	__u8 reserved0[2];
};
_Static_assert(sizeof(struct tcp_window) == 20, "tcp_window layout");

/*
 * A connection-table entry. Direction index 0 is the originator's direction
 * (original), 1 the reply. The fields the data plane reads and writes on
 * each packet come first; last_seen_ns is refreshed only when it is older
 * than the configured granularity, so an established flow does not dirty it
 * on every packet.
 */
struct flow_entry {
	__u8 state;		/* enum flow_state */
	__u8 flags;		/* enum flow_flag */
	__u8 helper;		/* enum helper_id */
	__u8 last_dir;		/* direction of the last state-changing packet */
	__u16 owner_node;	/* cluster node that owned the flow's bucket at creation; 0 single node */
	__u16 reserved0;
	__u32 rule_id;		/* rule that admitted the flow (0: related or replicated) */
	__u32 version;		/* bumped on every state change: orders replicas */
	struct tcp_window win[2];
	__u64 last_seen_ns;	/* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 packets[2];
	__u64 bytes[2];
	__u64 created_ns;	/* CLOCK_MONOTONIC */
	__u32 orig_ifindex;	/* interface the first packet arrived on (rule recheck) */
	__u32 reserved1;
};
_Static_assert(sizeof(struct flow_entry) == 112, "flow_entry layout");

#endif /* SYNCWALL_FLOW_TYPES_H */
