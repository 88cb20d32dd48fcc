// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * The reference for bench/xdp-cost.ts: the least a stateful XDP firewall
 * must do per packet. Parses Ethernet (one optional VLAN tag), IPv4 or IPv6
 * (no extension headers) and TCP or UDP ports, then does one hash lookup on
 * the 5-tuple and passes the packet whatever it finds. Key, value and map
 * type are syncwall's own (struct flow_key in a BPF_F_NO_PREALLOC hash of
 * struct flow_entry), so the lookup costs what syncwall's lookup costs.
 *
 * The key is NOT normalized: addr_a/port_a are the packet's source,
 * addr_b/port_b its destination (IPv4 in the first 4 address bytes), so a
 * benchmark that wants hits inserts keys in that orientation.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "flow_types.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct flow_entry);
} ref_flows SEC(".maps");

/* Lookups that found an entry, so the compiler cannot drop the lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ref_hits SEC(".maps");

struct ports {
	__be16 src;
	__be16 dst;
};

SEC("xdp")
int xdp_ref(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct flow_key key = {};
	struct ports *ports;
	__u16 proto;
	void *l3;
	__u32 zero = 0;
	__u64 *hits;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	proto = eth->h_proto;
	l3 = eth + 1;
	/* one 802.1Q tag: 2 bytes TCI, then the inner EtherType */
	if (proto == bpf_htons(ETH_P_8021Q)) {
		if (l3 + 4 > end)
			return XDP_PASS;
		proto = *(__be16 *)(l3 + 2);
		l3 += 4;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return XDP_PASS;
		ports = l3 + ip->ihl * 4;
		__builtin_memcpy(key.addr_a, &ip->saddr, 4);
		__builtin_memcpy(key.addr_b, &ip->daddr, 4);
		key.proto = ip->protocol;
		key.family = SW_FAMILY_V4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		ports = (void *)(ip6 + 1);
		__builtin_memcpy(key.addr_a, &ip6->saddr, 16);
		__builtin_memcpy(key.addr_b, &ip6->daddr, 16);
		key.proto = ip6->nexthdr;
		key.family = SW_FAMILY_V6;
	} else {
		return XDP_PASS;
	}

	if (key.proto != IPPROTO_TCP && key.proto != IPPROTO_UDP)
		return XDP_PASS;
	if ((void *)(ports + 1) > end)
		return XDP_PASS;
	key.port_a = ports->src;
	key.port_b = ports->dst;

	if (bpf_map_lookup_elem(&ref_flows, &key)) {
		hits = bpf_map_lookup_elem(&ref_hits, &zero);
		if (hits)
			(*hits)++;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
