/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * ICMP and ICMPv6 errors (unreachable, time exceeded, parameter problem,
 * packet too big) are matched through the packet they quote: the inner IP
 * header and the first 8 bytes of its L4 header name a flow. Quotes with
 * IPv6 extension headers, of fragments or of other ICMP errors name none.
 */
#ifndef SYNCWALL_ICMP_RELATED_H
#define SYNCWALL_ICMP_RELATED_H

#include "parse.h"
#include "maps.h"

/* Bound on the quoted header's offset (outer L4 offset + ICMP header). */
#define SW_MAX_INNER_OFF (SW_MAX_L4_OFF + sizeof(struct icmp_head))

/* Fills the flow key of the quoted packet; returns 0 on success. */
static __always_inline int icmp_inner_key(struct xdp_md *ctx, const struct packet *pkt,
					  struct flow_key *inner)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = pkt->l4_off + sizeof(struct icmp_head);
	struct icmp_head *l4;
	__u8 proto;

	if (off > SW_MAX_INNER_OFF)
		return -1;
	if (pkt->key.family == SW_FAMILY_V4) {
		struct iphdr *iph = data + off;

		if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5)
			return -1;
		/* a non-first fragment quotes no ports */
		if (iph->frag_off & bpf_htons(0x1fff))
			return -1;
		__builtin_memcpy(inner->addr_a, &iph->saddr, 4);
		__builtin_memcpy(inner->addr_b, &iph->daddr, 4);
		proto = iph->protocol;
		off += iph->ihl * 4;
	} else {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return -1;
		__builtin_memcpy(inner->addr_a, &ip6->saddr, 16);
		__builtin_memcpy(inner->addr_b, &ip6->daddr, 16);
		proto = ip6->nexthdr;
		off += sizeof(*ip6);
	}
	inner->family = pkt->key.family;
	inner->proto = proto;
	if (off > SW_MAX_INNER_OFF + 60)
		return -1;
	/* TCP/UDP ports and the ICMP echo identifier all sit in the first 8 bytes */
	l4 = data + off;
	if ((void *)(l4 + 1) > data_end)
		return -1;
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		__builtin_memcpy(&inner->port_a, l4, 2);
		__builtin_memcpy(&inner->port_b, (__u8 *)l4 + 2, 2);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (!((pkt->key.family == SW_FAMILY_V4 &&
		       (l4->type == ICMP_ECHO || l4->type == ICMP_ECHOREPLY)) ||
		      (pkt->key.family == SW_FAMILY_V6 &&
		       (l4->type == ICMPV6_ECHO_REQUEST || l4->type == ICMPV6_ECHO_REPLY))))
			return -1;
		inner->port_a = l4->id;
		inner->port_b = l4->id;
		break;
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_FRAGMENT:
		return -1;
	}
	flow_key_normalize(inner);
	return 0;
}

#endif /* SYNCWALL_ICMP_RELATED_H */
