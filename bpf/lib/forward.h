/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Forwarding of accepted packets: bpf_fib_lookup + redirect when the FIB
 * has a complete answer, the Linux stack otherwise (it also resolves the
 * neighbour, so later packets take the fast path).
 */
#ifndef SYNCWALL_FORWARD_H
#define SYNCWALL_FORWARD_H

#include "parse.h"
#include "maps.h"
#include "counters.h"

#define SW_AF_INET 2
#define SW_AF_INET6 10
#define SW_IPV6_FLOWINFO_MASK bpf_htonl(0x0fffffff)
/* Ethernet + two VLAN tags */
#define SW_MAX_L3_OFF 22

/* Looks up the packet's route from its ingress interface; returns BPF_FIB_LKUP_RET_*. */
static __always_inline int fib_lookup_packet(struct xdp_md *ctx, const struct packet *pkt,
					     struct bpf_fib_lookup *fib)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = pkt->l3_off;

	__builtin_memset(fib, 0, sizeof(*fib));
	if (off > SW_MAX_L3_OFF)
		return -1;
	fib->ifindex = ctx->ingress_ifindex;
	fib->l4_protocol = pkt->key.proto;
	fib->sport = pkt->src_is_a ? pkt->key.port_a : pkt->key.port_b;
	fib->dport = pkt->src_is_a ? pkt->key.port_b : pkt->key.port_a;
	/* the L3 length lets the lookup answer FRAG_NEEDED (the stack sends PTB) */
	fib->tot_len = pkt->ip_len;
	if (pkt->key.family == SW_FAMILY_V4) {
		struct iphdr *iph = data + off;

		if ((void *)(iph + 1) > data_end)
			return -1;
		fib->family = SW_AF_INET;
		fib->tos = iph->tos;
		fib->ipv4_src = iph->saddr;
		fib->ipv4_dst = iph->daddr;
	} else {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		fib->family = SW_AF_INET6;
		fib->flowinfo = *(__be32 *)ip6 & SW_IPV6_FLOWINFO_MASK;
		__builtin_memcpy(fib->ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib->ipv6_dst, &ip6->daddr, 16);
	}
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

/* The host itself is the destination (local, broadcast or multicast route). */
static __always_inline int destined_to_host(struct xdp_md *ctx, const struct packet *pkt)
{
	struct bpf_fib_lookup fib;

	return fib_lookup_packet(ctx, pkt, &fib) == BPF_FIB_LKUP_RET_NOT_FWDED;
}

/* Decrements the TTL and patches the IPv4 checksum incrementally (RFC 1624). */
static __always_inline void ipv4_decrease_ttl(struct iphdr *iph)
{
	__u32 check = iph->check;

	check += bpf_htons(0x0100);
	iph->check = (__sum16)(check + (check >= 0xffff));
	iph->ttl--;
}

/* Sends an accepted packet on its way; returns the XDP verdict. */
static __always_inline int forward(struct xdp_md *ctx, const struct packet *pkt)
{
	struct bpf_fib_lookup fib;
	void *data, *data_end;
	struct ethhdr *eth;
	int rc;

	/* tagged frames belong to the stack's VLAN devices */
	if (!(sw_cfg.flags & DPF_FAST_FORWARD) || pkt->vlan_tags) {
		count(CNT_FWD_STACK);
		return XDP_PASS;
	}
	rc = fib_lookup_packet(ctx, pkt, &fib);
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED) {
		count(CNT_PASS_LOCAL);
		return XDP_PASS;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count(CNT_FWD_STACK);
		return XDP_PASS;
	}
	/* the stack answers an exhausted hop limit with ICMP time exceeded */
	if (pkt->ttl <= 1) {
		count(CNT_PASS_TTL);
		return XDP_PASS;
	}

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if (pkt->key.family == SW_FAMILY_V4) {
		struct iphdr *iph = data + sizeof(*eth);

		if ((void *)(iph + 1) > data_end)
			return XDP_DROP;
		ipv4_decrease_ttl(iph);
	} else {
		struct ipv6hdr *ip6 = data + sizeof(*eth);

		if ((void *)(ip6 + 1) > data_end)
			return XDP_DROP;
		ip6->hop_limit--;
	}
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	count(CNT_FWD_FAST);
	return bpf_redirect(fib.ifindex, 0);
}

#endif /* SYNCWALL_FORWARD_H */
