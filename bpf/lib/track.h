/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Per-packet work on a hit: state tracking, counters, last-seen refresh. */
#ifndef SYNCWALL_TRACK_H
#define SYNCWALL_TRACK_H

#include "tcp_track.h"

/* Flows without a handshake: the first packet, then the first reply. */
static __always_inline void track_other(const struct packet *pkt, struct flow_entry *e, __u8 dir)
{
	if (e->state == FS_NONE)
		flow_set_state(e, &pkt->key, FS_UNREPLIED, dir);
	else if (e->state == FS_UNREPLIED && dir == 1)
		flow_set_state(e, &pkt->key, FS_REPLIED, dir);
}

/*
 * Returns 0 if the packet is accepted, else the sw_counter drop reason.
 * Counters and windows are updated without atomics: RSS keeps a flow on
 * one CPU, and a rare lost increment is cheaper than a locked add on the
 * hot path.
 */
static __always_inline int track_packet(const struct packet *pkt, struct flow_entry *e)
{
	__u8 dir = flow_dir(pkt->src_is_a, e->flags);
	__u32 version = e->version;
	__u64 now;

	if (pkt->kind == L4_TCP) {
		int reason = tcp_track(pkt, e, dir);

		if (reason)
			return reason;
	} else {
		track_other(pkt, e, dir);
	}
	/* coarse clock: cheap, and the sweeper's timeouts are seconds */
	now = bpf_ktime_get_coarse_ns();
	if (e->version != version || now - e->last_seen_ns > sw_cfg.last_seen_gran_ns)
		e->last_seen_ns = now;
	e->packets[dir & 1] += 1;
	e->bytes[dir & 1] += pkt->ip_len;
	return 0;
}

#endif /* SYNCWALL_TRACK_H */
