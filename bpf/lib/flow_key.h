/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Normalized flow keys: endpoint A is the numerically smaller
 * (address, port) pair, so both directions of a flow find one entry.
 */
#ifndef SYNCWALL_FLOW_KEY_H
#define SYNCWALL_FLOW_KEY_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include "flow_types.h"

static __always_inline __u64 load_be64(const __u8 *p)
{
	__u64 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return bpf_be64_to_cpu(v);
}

/*
 * The caller filled A with the packet's source and B with its destination.
 * Swaps them if the destination is the smaller endpoint. Returns 1 if the
 * packet's source is endpoint A, 0 otherwise.
 */
static __always_inline __u8 flow_key_normalize(struct flow_key *k)
{
	__u64 a0 = load_be64(k->addr_a), b0 = load_be64(k->addr_b);
	__u64 a1 = load_be64(k->addr_a + 8), b1 = load_be64(k->addr_b + 8);
	__u64 t0, t1;
	__be16 tp;

	/* addresses compare bytewise (big-endian words), then ports numerically */
	if (a0 < b0 || (a0 == b0 && (a1 < b1 || (a1 == b1 &&
	    bpf_ntohs(k->port_a) <= bpf_ntohs(k->port_b)))))
		return 1;

	__builtin_memcpy(&t0, k->addr_a, 8);
	__builtin_memcpy(&t1, k->addr_a + 8, 8);
	__builtin_memcpy(k->addr_a, k->addr_b, 16);
	__builtin_memcpy(k->addr_b, &t0, 8);
	__builtin_memcpy(k->addr_b + 8, &t1, 8);
	tp = k->port_a;
	k->port_a = k->port_b;
	k->port_b = tp;
	return 0;
}

/* Direction of a packet relative to an entry: 0 original, 1 reply. */
static __always_inline __u8 flow_dir(__u8 src_is_a, __u8 entry_flags)
{
	return src_is_a == !!(entry_flags & FLOW_F_ORIG_A) ? 0 : 1;
}

#endif /* SYNCWALL_FLOW_KEY_H */
