// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * syncwall's XDP data plane.
 *
 * xdp_syncwall filters forwarded traffic statefully: established flows are
 * tracked and forwarded entirely here; the first packet of a new flow goes
 * to the controller (punt), which decides by its rules, inserts an entry in
 * FS_NONE and re-runs this program on the packet (BPF_PROG_TEST_RUN with
 * live frames), so the first packet is tracked and forwarded like the rest.
 *
 * Decisions that are not obvious:
 *  - IP fragments are dropped (CNT_DROP_FRAGMENT): a non-first fragment
 *    carries no ports and cannot be matched to a flow without reassembly,
 *    and path-MTU discovery makes fragments rare.
 *  - Traffic to the host itself passes to the stack untracked: the host's
 *    own services are protected by its own stack firewall. This also lets
 *    the node's own connections (cluster sync, management) work. It needs
 *    forwarding enabled on the ingress interface, as a router has.
 *  - Protocols other than TCP, UDP, ICMP and ICMPv6 are tracked as generic
 *    flows with ports 0, so rules can allow e.g. GRE or ESP.
 *  - In a cluster (DPF_CLUSTER, docs/CLUSTER.md) frames to the cluster MAC
 *    are dropped unless this node owns the flow's bucket, before any table
 *    work; those it keeps and hands to the stack are readdressed to the
 *    interface's own MAC. ARP/ND for the cluster's addresses is answered
 *    here. A mid-stream packet of an owned bucket without an entry is
 *    punted as EV_FLOW_MISS: its state lives on another node.
 *  - A flow with a protocol helper (FTP) punts the commands that open a
 *    related connection as EV_HELPER, and while the controller holds one,
 *    every later packet of the flow (lib/helper.h).
 *
 * xdp_syncwall_release is the same program without the helper checks: the
 * controller re-injects released helper packets through it, so a released
 * command is tracked and forwarded instead of punted again.
 *
 * xdp_tx_out returns XDP_TX: the controller runs it with live frames to
 * send a crafted reply (TCP RST, ICMP unreachable) out of an interface.
 */
#include "lib/maps.h"
#include "lib/counters.h"
#include "lib/parse.h"
#include "lib/track.h"
#include "lib/icmp_related.h"
#include "lib/forward.h"
#include "lib/punt.h"
#include "lib/helper.h"
#include "lib/cluster.h"
#include "lib/cluster_neigh.h"

/*
 * The controller generates its struct layouts and enums from this object's
 * BTF (tools/gen-layout.ts). Types used only inside inlined code leave no
 * BTF, so these never-used globals (.bss) keep every shared type in it.
 */
struct punt_small *sw_btf_punt_small;
struct punt_full *sw_btf_punt_full;
struct state_event *sw_btf_state_event;
enum sw_family sw_btf_family;
enum flow_state sw_btf_flow_state;
enum flow_flag sw_btf_flow_flag;
enum helper_id sw_btf_helper_id;
enum tcp_window_flag sw_btf_tcp_window_flag;
enum dp_config_flag sw_btf_dp_config_flag;
enum event_type sw_btf_event_type;
enum sw_counter sw_btf_counter;

/* Packets that may open a flow when no entry exists. */
static __always_inline int may_open_flow(const struct packet *pkt)
{
	switch (pkt->kind) {
	case L4_TCP:
		return (pkt->tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN;
	case L4_UDP:
	case L4_ECHO_REQUEST:
	case L4_GENERIC:
		return 1;
	default:
		return 0;
	}
}

/*
 * ICMP errors are matched through the flow they quote, never tracked
 * themselves; in a cluster they belong to the owner of the quoted flow.
 */
static __always_inline int filter_icmp_error(struct xdp_md *ctx, struct packet *pkt, int shared)
{
	struct flow_key inner = {};
	int quotes_flow = !icmp_inner_key(ctx, pkt, &inner);

	if (shared && !bucket_is_mine(flow_bucket(quotes_flow ? &inner : &pkt->key)))
		return drop(CNT_DROP_NOT_OWNER);
	if (quotes_flow && bpf_map_lookup_elem(&sw_conns, &inner)) {
		count(CNT_RELATED_ICMP);
		return forward(ctx, pkt);
	}
	if (destined_to_host(ctx, pkt)) {
		count(CNT_PASS_LOCAL);
		return XDP_PASS;
	}
	return drop(CNT_DROP_ICMP_UNRELATED);
}

/*
 * Everything after parsing: the cluster's bucket filter, then tracking and
 * forwarding. shared: the frame went to the cluster MAC, so every node has
 * it and only the bucket's owner may act on it. release: a packet the
 * controller re-injects after a helper's hold, never punted to a helper.
 */
static __always_inline int filter_packet(struct xdp_md *ctx, struct packet *pkt, int shared,
					 const int release)
{
	const struct bucket_owner *owned = NULL;
	struct flow_entry *e;
	__u16 punt_type;
	int reason;

	if (pkt->kind == L4_ICMP_ERROR)
		return filter_icmp_error(ctx, pkt, shared);
	if (shared) {
		owned = bucket_owned(flow_bucket(&pkt->key));
		if (!owned)
			return drop(CNT_DROP_NOT_OWNER);
	}

	/* the established path: one lookup, track, forward */
	e = bpf_map_lookup_elem(&sw_conns, &pkt->key);
	if (e) {
		count(CNT_HIT);
		if (owned)
			distrust_if_stale(e, owned);
		if (!release) {
			/* before tracking: the released packet is tracked when re-injected */
			int verdict = helper_filter(ctx, pkt, e);

			if (verdict >= 0)
				return verdict;
		}
		reason = track_packet(pkt, e);
		if (reason)
			return drop(reason);
		return forward(ctx, pkt);
	}

	/* miss: the host's own traffic goes to its stack untracked */
	if (destined_to_host(ctx, pkt)) {
		count(CNT_PASS_LOCAL);
		return XDP_PASS;
	}
	if (may_open_flow(pkt))
		punt_type = EV_PUNT;
	/* an owner without the state: another node has it (trigger e) */
	else if (cluster_enabled() && bucket_is_mine(flow_bucket(&pkt->key)))
		punt_type = EV_FLOW_MISS;
	else
		return drop(CNT_DROP_NO_ENTRY);
	return punt(ctx, pkt, punt_type);
}

/* The whole program; release is a constant per entry point (see the header). */
static __always_inline int syncwall(struct xdp_md *ctx, const int release)
{
	struct packet pkt = {};
	int shared, verdict;

	count(CNT_RX);
	switch (parse_packet(ctx, &pkt)) {
	case PARSE_OK:
		break;
	case PARSE_NON_IP:
		if (cluster_enabled() && cluster_answer_arp(ctx, &pkt)) {
			count(CNT_CLUSTER_ARP_REPLY);
			return XDP_TX;
		}
		count(CNT_PASS_NON_IP);
		return XDP_PASS;
	case PARSE_ND:
		if (cluster_enabled() && cluster_answer_ns(ctx, &pkt)) {
			count(CNT_CLUSTER_ARP_REPLY);
			return XDP_TX;
		}
		count(CNT_PASS_ND);
		return XDP_PASS;
	case PARSE_FRAGMENT:
		return drop(CNT_DROP_FRAGMENT);
	case PARSE_BAD_TCP_FLAGS:
		return drop(CNT_DROP_TCP_FLAGS);
	default:
		return drop(CNT_DROP_MALFORMED);
	}

	shared = cluster_enabled() && to_cluster_mac(ctx);
	/* a node whose controller is gone has been replaced by its peers */
	if (shared && !controller_alive())
		return drop(CNT_DROP_NO_CONTROLLER);
	verdict = filter_packet(ctx, &pkt, shared, release);
	if (verdict == XDP_PASS && shared)
		cluster_frame_to_host(ctx);
	return verdict;
}

SEC("xdp")
int xdp_syncwall(struct xdp_md *ctx)
{
	return syncwall(ctx, 0);
}

SEC("xdp")
int xdp_syncwall_release(struct xdp_md *ctx)
{
	return syncwall(ctx, 1);
}

SEC("xdp")
int xdp_tx_out(struct xdp_md *ctx)
{
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
