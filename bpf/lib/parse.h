/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Header parsing: Ethernet, up to two VLAN tags, IPv4 (options), IPv6 with
 * a bounded extension-header walk, TCP, UDP, ICMP and ICMPv6. The result is
 * a struct packet holding the normalized flow key and the fields the
 * trackers need, so no later step re-parses headers.
 */
#ifndef SYNCWALL_PARSE_H
#define SYNCWALL_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "flow_key.h"

/* linux/icmp.h pulls in glibc under -target bpf: the few values we need. */
#define ICMP_ECHOREPLY		0
#define ICMP_DEST_UNREACH	3
#define ICMP_ECHO		8
#define ICMP_TIME_EXCEEDED	11
#define ICMP_PARAMETERPROB	12
#define ICMPV6_DEST_UNREACH	1
#define ICMPV6_PKT_TOOBIG	2
#define ICMPV6_TIME_EXCEED	3
#define ICMPV6_PARAMPROB	4
#define ICMPV6_ECHO_REQUEST	128
#define ICMPV6_ECHO_REPLY	129
#define ICMPV6_MLD_QUERY	130
#define ICMPV6_MLD_DONE		132
#define ICMPV6_ND_FIRST		133	/* router solicitation */
#define ICMPV6_ND_LAST		137	/* redirect */
#define ICMPV6_MLD2_REPORT	143

/* The first 8 bytes of ICMP and ICMPv6 headers share this layout. */
struct icmp_head {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 sequence;
};

struct vlan_head {
	__be16 tci;
	__be16 encap_proto;
};

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_PSH 0x08
#define TCPF_ACK 0x10
#define TCPF_URG 0x20
#define TCPF_ECE 0x40
#define TCPF_CWR 0x80

/*
 * netfilter's tcp_valid_flags as a bit set over FIN|SYN|RST|PSH|ACK|URG
 * with PSH masked out (PSH, ECE and CWR are always allowed).
 */
#define TCP_VALID_FLAGS ((1ULL << TCPF_SYN) | (1ULL << (TCPF_SYN | TCPF_URG)) | \
	(1ULL << (TCPF_SYN | TCPF_ACK)) | (1ULL << TCPF_RST) | \
	(1ULL << (TCPF_RST | TCPF_ACK)) | (1ULL << (TCPF_FIN | TCPF_ACK)) | \
	(1ULL << (TCPF_FIN | TCPF_ACK | TCPF_URG)) | (1ULL << TCPF_ACK) | \
	(1ULL << (TCPF_ACK | TCPF_URG)))

#define TCPOPT_EOL	0
#define TCPOPT_NOP	1
#define TCPOPT_WINDOW	3
#define TCPOPT_SACK_PERM 4
#define TCP_MAX_WSCALE	14
#define TCP_MAX_OPTLEN	40

/* More extension headers than this is no legitimate packet: drop it. */
#define SW_IPV6_MAX_EXT 6
/* Bound on the L4 offset; keeps packet pointers provably in range. */
#define SW_MAX_L4_OFF 1024

enum parse_result {
	PARSE_OK = 0,
	PARSE_NON_IP,		/* ARP, LLDP, ...: to the stack */
	PARSE_ND,		/* IPv6 neighbour discovery and MLD: to the stack */
	PARSE_FRAGMENT,
	PARSE_MALFORMED,
	PARSE_BAD_TCP_FLAGS,
};

/* What the L4 header says about opening and matching a flow. */
enum l4_kind {
	L4_TCP,
	L4_UDP,
	L4_ECHO_REQUEST,	/* ICMP/ICMPv6 echo request: may open a flow */
	L4_ECHO_REPLY,		/* cannot open a flow */
	L4_ICMP_ERROR,		/* matched through the packet it quotes */
	L4_GENERIC,		/* other protocols and ICMP types: ports 0 */
};

struct packet {
	struct flow_key key;	/* normalized */
	__u32 ip_len;		/* L3 header + payload, from the IP header */
	__u32 l4_len;		/* L4 header + payload */
	__u32 seq;		/* TCP, host order */
	__u32 ack;
	__u16 window;
	__u16 l3_off;
	__u16 l4_off;
	__u8 kind;		/* enum l4_kind */
	__u8 src_is_a;
	__u8 vlan_tags;
	__u8 ttl;		/* TTL / hop limit */
	__u8 tcp_flags;
	__u8 tcp_doff;		/* TCP header length in bytes */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 opt_wscale;	/* SYN options: window scale */
	__u8 opt_flags;		/* SYN options: TCPW_F_WINDOW_SCALE | TCPW_F_SACK_PERM */
};

/* Window scale and SACK-permitted from a SYN's options (netfilter's tcp_options). */
static __always_inline void parse_tcp_options(struct xdp_md *ctx, struct packet *pkt,
					      __u32 off, __u32 len)
{
	__u8 opt[TCP_MAX_OPTLEN];
	__u32 i = 0;

	if (len == 0 || len > TCP_MAX_OPTLEN)
		return;
	if (bpf_xdp_load_bytes(ctx, off, opt, len))
		return;
	/* bounded walk: each step consumes at least one byte */
	for (int n = 0; n < TCP_MAX_OPTLEN; n++) {
		__u8 kind, size;

		if (i >= len || i >= TCP_MAX_OPTLEN - 1)
			break;
		kind = opt[i];
		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		size = opt[i + 1];
		/* silly or partial options end the walk, as in netfilter */
		if (size < 2 || i + size > len)
			break;
		if (kind == TCPOPT_SACK_PERM && size == 2) {
			pkt->opt_flags |= TCPW_F_SACK_PERM;
		} else if (kind == TCPOPT_WINDOW && size == 3 && i + 2 < TCP_MAX_OPTLEN) {
			__u8 shift = opt[i + 2];

			pkt->opt_wscale = shift > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : shift;
			pkt->opt_flags |= TCPW_F_WINDOW_SCALE;
		}
		i += size;
	}
}

static __always_inline int parse_tcp(struct xdp_md *ctx, struct packet *pkt,
				     void *data, void *data_end, __u32 off)
{
	struct tcphdr *th = data + off;
	__u32 doff;
	__u8 flags;

	if ((void *)(th + 1) > data_end)
		return PARSE_MALFORMED;
	doff = th->doff * 4;
	/* data offset must cover the fixed header and stay inside the segment */
	if (doff < sizeof(*th) || doff > pkt->l4_len)
		return PARSE_MALFORMED;
	flags = ((__u8 *)th)[13];
	if (!((TCP_VALID_FLAGS >> (flags & (TCPF_FIN | TCPF_SYN | TCPF_RST | TCPF_ACK | TCPF_URG))) & 1))
		return PARSE_BAD_TCP_FLAGS;
	pkt->kind = L4_TCP;
	pkt->tcp_flags = flags;
	pkt->tcp_doff = doff;
	pkt->seq = bpf_ntohl(th->seq);
	pkt->ack = bpf_ntohl(th->ack_seq);
	pkt->window = bpf_ntohs(th->window);
	pkt->key.port_a = th->source;
	pkt->key.port_b = th->dest;
	/* options matter only on SYNs (window scale); data packets skip them */
	if (flags & TCPF_SYN)
		parse_tcp_options(ctx, pkt, off + sizeof(*th), doff - sizeof(*th));
	return PARSE_OK;
}

static __always_inline int parse_udp(struct packet *pkt, void *data, void *data_end, __u32 off)
{
	struct udphdr *uh = data + off;
	__u32 len;

	if ((void *)(uh + 1) > data_end)
		return PARSE_MALFORMED;
	len = bpf_ntohs(uh->len);
	if (len < sizeof(*uh) || len > pkt->l4_len)
		return PARSE_MALFORMED;
	pkt->kind = L4_UDP;
	pkt->key.port_a = uh->source;
	pkt->key.port_b = uh->dest;
	return PARSE_OK;
}

static __always_inline int parse_icmp(struct packet *pkt, void *data, void *data_end,
				      __u32 off, int v6)
{
	struct icmp_head *ih = data + off;
	__u8 type;

	if ((void *)(ih + 1) > data_end || pkt->l4_len < sizeof(*ih))
		return PARSE_MALFORMED;
	type = ih->type;
	pkt->icmp_type = type;
	pkt->icmp_code = ih->code;
	pkt->kind = L4_GENERIC;
	if (v6) {
		/* link-local control the stack must see; never forwarded by a router */
		if ((type >= ICMPV6_ND_FIRST && type <= ICMPV6_ND_LAST) ||
		    (type >= ICMPV6_MLD_QUERY && type <= ICMPV6_MLD_DONE) ||
		    type == ICMPV6_MLD2_REPORT)
			return PARSE_ND;
		if (type == ICMPV6_ECHO_REQUEST)
			pkt->kind = L4_ECHO_REQUEST;
		else if (type == ICMPV6_ECHO_REPLY)
			pkt->kind = L4_ECHO_REPLY;
		else if (type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB)
			pkt->kind = L4_ICMP_ERROR;
	} else {
		if (type == ICMP_ECHO)
			pkt->kind = L4_ECHO_REQUEST;
		else if (type == ICMP_ECHOREPLY)
			pkt->kind = L4_ECHO_REPLY;
		else if (type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
			 type == ICMP_PARAMETERPROB)
			pkt->kind = L4_ICMP_ERROR;
	}
	/* an echo flow is named by its identifier, used as both ports */
	if (pkt->kind == L4_ECHO_REQUEST || pkt->kind == L4_ECHO_REPLY) {
		pkt->key.port_a = ih->id;
		pkt->key.port_b = ih->id;
	}
	return PARSE_OK;
}

static __always_inline int parse_l4(struct xdp_md *ctx, struct packet *pkt, void *data,
				    void *data_end, __u32 off, __u8 proto)
{
	pkt->key.proto = proto;
	switch (proto) {
	case IPPROTO_TCP:
		return parse_tcp(ctx, pkt, data, data_end, off);
	case IPPROTO_UDP:
		return parse_udp(pkt, data, data_end, off);
	case IPPROTO_ICMP:
		if (pkt->key.family == SW_FAMILY_V4)
			return parse_icmp(pkt, data, data_end, off, 0);
		break;
	case IPPROTO_ICMPV6:
		if (pkt->key.family == SW_FAMILY_V6)
			return parse_icmp(pkt, data, data_end, off, 1);
		break;
	}
	/* untracked protocols (GRE, ESP, ...) are generic flows with ports 0 */
	pkt->kind = L4_GENERIC;
	return PARSE_OK;
}

static __always_inline int parse_ipv4(struct xdp_md *ctx, struct packet *pkt, void *data,
				      void *data_end, __u32 off)
{
	struct iphdr *iph = data + off;
	__u32 ihl, tot;

	if ((void *)(iph + 1) > data_end)
		return PARSE_MALFORMED;
	ihl = iph->ihl * 4;
	tot = bpf_ntohs(iph->tot_len);
	/* header length honours options; total length must fit the frame (padding allowed) */
	if (iph->version != 4 || ihl < sizeof(*iph) || tot < ihl ||
	    off + tot > (__u64)(data_end - data))
		return PARSE_MALFORMED;
	/* a non-first fragment has no ports; see the program's header comment */
	if (iph->frag_off & bpf_htons(0x3fff))
		return PARSE_FRAGMENT;
	pkt->key.family = SW_FAMILY_V4;
	__builtin_memcpy(pkt->key.addr_a, &iph->saddr, 4);
	__builtin_memcpy(pkt->key.addr_b, &iph->daddr, 4);
	pkt->ttl = iph->ttl;
	pkt->ip_len = tot;
	pkt->l4_len = tot - ihl;
	pkt->l4_off = off + ihl;
	return parse_l4(ctx, pkt, data, data_end, off + ihl, iph->protocol);
}

struct ipv6_ext_head {
	__u8 nexthdr;
	__u8 hdrlen;	/* in 8-byte units, not counting the first 8 bytes */
};

static __always_inline int parse_ipv6(struct xdp_md *ctx, struct packet *pkt, void *data,
				      void *data_end, __u32 off)
{
	struct ipv6hdr *ip6 = data + off;
	__u32 plen, l4, end;
	__u8 next;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	plen = bpf_ntohs(ip6->payload_len);
	end = off + sizeof(*ip6) + plen;
	/* jumbograms (payload length 0) are not supported */
	if (ip6->version != 6 || plen == 0 || end > (__u64)(data_end - data))
		return PARSE_MALFORMED;
	pkt->key.family = SW_FAMILY_V6;
	__builtin_memcpy(pkt->key.addr_a, &ip6->saddr, 16);
	__builtin_memcpy(pkt->key.addr_b, &ip6->daddr, 16);
	pkt->ttl = ip6->hop_limit;
	pkt->ip_len = sizeof(*ip6) + plen;
	next = ip6->nexthdr;
	l4 = off + sizeof(*ip6);
	/* bounded walk over the extension headers that precede L4 */
	for (i = 0; i < SW_IPV6_MAX_EXT; i++) {
		struct ipv6_ext_head *eh;

		if (next == IPPROTO_FRAGMENT)
			return PARSE_FRAGMENT;
		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
			break;
		if (l4 > SW_MAX_L4_OFF)
			return PARSE_MALFORMED;
		eh = data + l4;
		if ((void *)(eh + 1) > data_end)
			return PARSE_MALFORMED;
		next = eh->nexthdr;
		l4 += (eh->hdrlen + 1) * 8;
	}
	/* still an extension header after the walk: the chain is too long */
	if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	    next == IPPROTO_FRAGMENT || l4 > end || l4 > SW_MAX_L4_OFF)
		return PARSE_MALFORMED;
	pkt->l4_len = end - l4;
	pkt->l4_off = l4;
	return parse_l4(ctx, pkt, data, data_end, l4, next);
}

/* Parses the frame into pkt (zeroed by the caller); returns enum parse_result. */
static __always_inline int parse_packet(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__be16 proto;
	int rc;

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	proto = eth->h_proto;
	/* 802.1Q and 802.1ad (QinQ): at most two tags */
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_head *vh = data + off;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return PARSE_MALFORMED;
		proto = vh->encap_proto;
		off += sizeof(*vh);
		pkt->vlan_tags++;
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return PARSE_MALFORMED;
	pkt->l3_off = off;
	if (proto == bpf_htons(ETH_P_IP))
		rc = parse_ipv4(ctx, pkt, data, data_end, off);
	else if (proto == bpf_htons(ETH_P_IPV6))
		rc = parse_ipv6(ctx, pkt, data, data_end, off);
	else
		return PARSE_NON_IP;
	if (rc == PARSE_OK)
		pkt->src_is_a = flow_key_normalize(&pkt->key);
	return rc;
}

#endif /* SYNCWALL_PARSE_H */
