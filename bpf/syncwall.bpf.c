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

SEC("xdp")
int xdp_syncwall(struct xdp_md *ctx)
{
	struct packet pkt = {};
	struct flow_entry *e;
	int reason;

	count(CNT_RX);
	switch (parse_packet(ctx, &pkt)) {
	case PARSE_OK:
		break;
	case PARSE_NON_IP:
		count(CNT_PASS_NON_IP);
		return XDP_PASS;
	case PARSE_ND:
		count(CNT_PASS_ND);
		return XDP_PASS;
	case PARSE_FRAGMENT:
		return drop(CNT_DROP_FRAGMENT);
	case PARSE_BAD_TCP_FLAGS:
		return drop(CNT_DROP_TCP_FLAGS);
	default:
		return drop(CNT_DROP_MALFORMED);
	}

	/* errors are matched through the flow they quote, never tracked themselves */
	if (pkt.kind == L4_ICMP_ERROR) {
		if (icmp_is_related(ctx, &pkt)) {
			count(CNT_RELATED_ICMP);
			return forward(ctx, &pkt);
		}
		if (destined_to_host(ctx, &pkt)) {
			count(CNT_PASS_LOCAL);
			return XDP_PASS;
		}
		return drop(CNT_DROP_ICMP_UNRELATED);
	}

	/* the established path: one lookup, track, forward */
	e = bpf_map_lookup_elem(&sw_conns, &pkt.key);
	if (e) {
		count(CNT_HIT);
		reason = track_packet(&pkt, e);
		if (reason)
			return drop(reason);
		return forward(ctx, &pkt);
	}

	/* miss: the host's own traffic goes to its stack untracked */
	if (destined_to_host(ctx, &pkt)) {
		count(CNT_PASS_LOCAL);
		return XDP_PASS;
	}
	if (!may_open_flow(&pkt))
		return drop(CNT_DROP_NO_ENTRY);
	return punt(ctx, &pkt);
}

SEC("xdp")
int xdp_tx_out(struct xdp_md *ctx)
{
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
