/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * ARP and IPv6 neighbour discovery for the cluster's addresses: a request
 * for an address in sw_cluster_addrs (on the interface it arrived on) is
 * turned into the answer in place and sent back with XDP_TX. The answer
 * names the cluster MAC, so every node sees the traffic that follows.
 * Every node answers, identically: duplicates are harmless, disagreement
 * would not be. The Ethernet source is the interface's own MAC: a multicast
 * source address is invalid and bridges drop it (CLUSTERIP did the same).
 * Untagged frames only; anything else goes to the stack as before.
 */
#ifndef SYNCWALL_CLUSTER_NEIGH_H
#define SYNCWALL_CLUSTER_NEIGH_H

#include <linux/if_ether.h>
#include "parse.h"
#include "maps.h"

#define ARPHRD_ETHER_BE bpf_htons(1)
#define ARPOP_REQUEST_BE bpf_htons(1)
#define ARPOP_REPLY_BE bpf_htons(2)

/* An Ethernet/IPv4 ARP packet. */
struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
};

#define ICMPV6_ND_NS 135
#define ICMPV6_ND_NA 136
#define ND_OPT_TARGET_LL_ADDR 2
#define ND_NA_ROUTER bpf_htonl(0x80000000)
#define ND_NA_SOLICITED bpf_htonl(0x40000000)
#define ND_NA_OVERRIDE bpf_htonl(0x20000000)

/* Solicitation and advertisement share this layout; the NA carries one option. */
struct nd_msg {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 flags;		/* NA: router, solicited, override; NS: reserved */
	__u8 target[16];
	__u8 opt_type;		/* NA: target link-layer address */
	__u8 opt_len;		/* in 8-byte units */
	__u8 opt_mac[ETH_ALEN];
};

/* The whole neighbour advertisement frame: no extension headers, no padding. */
#define ND_NA_FRAME_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct nd_msg))
/* A solicitation without its options. */
#define ND_NS_LEN (sizeof(struct nd_msg) - 8)

/* Looks up whether the cluster answers for addr (4 or 16 bytes by family) on ifindex. */
static __always_inline int is_cluster_addr(const __u8 *addr, __u8 family, __u32 ifindex)
{
	struct cluster_addr key = {};

	if (family == SW_FAMILY_V4)
		__builtin_memcpy(key.addr, addr, 4);
	else
		__builtin_memcpy(key.addr, addr, 16);
	key.ifindex = ifindex;
	key.family = family;
	return bpf_map_lookup_elem(&sw_cluster_addrs, &key) != NULL;
}

/* Answers an ARP request for a cluster address; returns 1 if the frame is now the reply. */
static __always_inline int cluster_answer_arp(struct xdp_md *ctx, const struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct ethhdr *eth = data;
	struct arp_ipv4 *arp = data + sizeof(*eth);
	struct iface_info *iface;
	__u8 target[4];

	if (pkt->vlan_tags || (void *)(arp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_ARP))
		return 0;
	if (arp->htype != ARPHRD_ETHER_BE || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != ETH_ALEN || arp->plen != 4 || arp->oper != ARPOP_REQUEST_BE)
		return 0;
	if (!is_cluster_addr(arp->tpa, SW_FAMILY_V4, ifindex))
		return 0;
	iface = bpf_map_lookup_elem(&sw_ifaces, &ifindex);
	if (!iface)
		return 0;

	/* "target is at cluster MAC", to the requester */
	__builtin_memcpy(target, arp->tpa, 4);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, iface->mac, ETH_ALEN);
	arp->oper = ARPOP_REPLY_BE;
	__builtin_memcpy(arp->tha, arp->sha, ETH_ALEN);
	__builtin_memcpy(arp->tpa, arp->spa, 4);
	for (int i = 0; i < ETH_ALEN; i++)
		arp->sha[i] = sw_cfg.cluster_mac[i];
	__builtin_memcpy(arp->spa, target, 4);
	return 1;
}

static __always_inline __sum16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

/* ICMPv6 checksum of the advertisement: pseudo-header, then the message. */
static __always_inline __sum16 nd_na_checksum(struct ipv6hdr *ip6, struct nd_msg *na)
{
	__be32 pseudo[2] = { bpf_htonl(sizeof(*na)), bpf_htonl(IPPROTO_ICMPV6) };
	__s64 sum;

	/* saddr and daddr are adjacent: 32 bytes */
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ip6->saddr, 32, 0);
	sum = bpf_csum_diff(NULL, 0, pseudo, sizeof(pseudo), (__u32)sum);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)na, sizeof(*na), (__u32)sum);
	return csum_fold((__u32)sum);
}

/*
 * Answers a neighbour solicitation for a cluster address with an
 * advertisement (RFC 4861 7.2.4); returns 1 if the frame is now the answer.
 * A solicitation from the unspecified address (duplicate address detection)
 * is answered to all-nodes without the solicited flag. The router flag is
 * set: the cluster forwards, and a host whose default router answered
 * without it would drop that router.
 */
static __always_inline int cluster_answer_ns(struct xdp_md *ctx, const struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);
	struct nd_msg *ns = (void *)(ip6 + 1);
	__u8 requester_mac[ETH_ALEN], requester[16], target[16];
	struct iface_info *iface;
	__be32 flags = ND_NA_ROUTER | ND_NA_SOLICITED | ND_NA_OVERRIDE;
	__u64 a0, a1;

	/* hop limit 255: the solicitation came from the link itself */
	if (pkt->vlan_tags || pkt->icmp_type != ICMPV6_ND_NS || pkt->icmp_code != 0 || pkt->ttl != 255 ||
	    pkt->l4_off != (void *)ns - data || pkt->l4_len < ND_NS_LEN)
		return 0;
	if ((void *)ns + ND_NS_LEN > data_end)
		return 0;
	if (!is_cluster_addr(ns->target, SW_FAMILY_V6, ifindex))
		return 0;
	iface = bpf_map_lookup_elem(&sw_ifaces, &ifindex);
	if (!iface)
		return 0;
	__builtin_memcpy(target, ns->target, 16);
	__builtin_memcpy(requester, &ip6->saddr, 16);
	__builtin_memcpy(requester_mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(&a0, requester, 8);
	__builtin_memcpy(&a1, requester + 8, 8);
	if ((a0 | a1) == 0) {
		/* all-nodes ff02::1 and its MAC 33:33:00:00:00:01 */
		__builtin_memset(requester, 0, 16);
		requester[0] = 0xff;
		requester[1] = 0x02;
		requester[15] = 0x01;
		__builtin_memset(requester_mac, 0, ETH_ALEN);
		requester_mac[0] = 0x33;
		requester_mac[1] = 0x33;
		requester_mac[5] = 0x01;
		flags &= ~ND_NA_SOLICITED;
	}

	/* the advertisement has a fixed size: whatever options the solicitation had go */
	if (bpf_xdp_adjust_tail(ctx, (int)ND_NA_FRAME_LEN - (int)(ctx->data_end - ctx->data)))
		return 0;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	ip6 = data + sizeof(*eth);
	ns = (void *)(ip6 + 1);
	if ((void *)(ns + 1) > data_end)
		return 0;

	__builtin_memcpy(eth->h_dest, requester_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, iface->mac, ETH_ALEN);
	*(__be32 *)ip6 = bpf_htonl(0x60000000);
	ip6->payload_len = bpf_htons(sizeof(*ns));
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 255;
	__builtin_memcpy(&ip6->saddr, target, 16);
	__builtin_memcpy(&ip6->daddr, requester, 16);
	ns->type = ICMPV6_ND_NA;
	ns->code = 0;
	ns->checksum = 0;
	ns->flags = flags;
	__builtin_memcpy(ns->target, target, 16);
	ns->opt_type = ND_OPT_TARGET_LL_ADDR;
	ns->opt_len = 1;
	for (int i = 0; i < ETH_ALEN; i++)
		ns->opt_mac[i] = sw_cfg.cluster_mac[i];
	ns->checksum = nd_na_checksum(ip6, ns);
	return 1;
}

#endif /* SYNCWALL_CLUSTER_NEIGH_H */
