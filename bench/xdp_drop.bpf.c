// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * Drops every frame at the earliest point. bench/forwarding.ts attaches it to
 * the sink's veth (so received packets cost the sink nothing and are counted
 * in the veth's XDP statistics) and to the firewall's ingress veth to measure
 * the harness ceiling: the most a generator can push into that interface.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
