/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Per-CPU verdict counters (sw_counters, indexed by enum sw_counter). */
#ifndef SYNCWALL_COUNTERS_H
#define SYNCWALL_COUNTERS_H

#include "maps.h"

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&sw_counters, &idx);

	/* per-CPU slot: no other writer, a plain add is exact */
	if (c)
		*c += 1;
}

/* Counts the reason and drops the packet. */
static __always_inline int drop(__u32 reason)
{
	count(reason);
	return XDP_DROP;
}

#endif /* SYNCWALL_COUNTERS_H */
