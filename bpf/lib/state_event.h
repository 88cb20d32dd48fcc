/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* State changes of an entry and the events that announce them. */
#ifndef SYNCWALL_STATE_EVENT_H
#define SYNCWALL_STATE_EVENT_H

#include "maps.h"
#include "counters.h"
#include "bucket.h"

/*
 * Moves the entry to new_state, bumps its version (replicas are ordered by
 * it) and emits a state_event. A full ring loses the event, never the change.
 */
static __always_inline void flow_set_state(struct flow_entry *e, const struct flow_key *key,
					   __u8 new_state, __u8 dir)
{
	struct state_event *ev;
	__u8 old_state = e->state;

	e->state = new_state;
	e->version++;
	e->last_dir = dir;

	ev = bpf_ringbuf_reserve(&sw_event_ring, sizeof(*ev), 0);
	if (!ev) {
		count(CNT_DROP_EVENT_RING_FULL);
		return;
	}
	ev->type = EV_STATE;
	ev->old_state = old_state;
	ev->new_state = new_state;
	ev->version = e->version;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->key = *key;
	ev->rule_id = e->rule_id;
	ev->flags = e->flags;
	ev->reserved0 = 0;
	ev->bucket = flow_bucket(key);
	bpf_ringbuf_submit(ev, 0);
	count(CNT_STATE_EVENT);
}

#endif /* SYNCWALL_STATE_EVENT_H */
