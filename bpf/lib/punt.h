/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Punting: a packet without an entry that may open a flow (EV_PUNT), in a
 * cluster a mid-stream packet of an owned bucket whose state is on another
 * node (EV_FLOW_MISS), or a packet a protocol helper must see (EV_HELPER,
 * helper.h) goes whole to the controller through sw_punt_ring, and XDP
 * drops the original (the controller re-injects it once the flow is
 * admitted, its state fetched or the helper's hold released). A per-CPU
 * token bucket keeps a flood from swamping the controller; established
 * traffic never reaches it.
 */
#ifndef SYNCWALL_PUNT_H
#define SYNCWALL_PUNT_H

#include "parse.h"
#include "maps.h"
#include "counters.h"
#include "bucket.h"

/* Takes one token from this CPU's bucket; returns 1 if there was one. */
static __always_inline int punt_take_token(void)
{
	__u32 zero = 0;
	struct punt_bucket *b = bpf_map_lookup_elem(&sw_punt_bucket, &zero);
	__u64 now, elapsed, full, add, tokens;

	if (!b)
		return 0;
	now = bpf_ktime_get_ns();
	elapsed = now - b->last_ns;
	/* saturating arithmetic: any configured rate and burst are safe */
	full = sw_cfg.punt_burst > ~0ULL / SW_TOKEN_SCALE ? ~0ULL : sw_cfg.punt_burst * SW_TOKEN_SCALE;
	tokens = b->tokens > full ? full : b->tokens;
	/* rate tokens per second are rate scaled units per ns */
	if (sw_cfg.punt_rate != 0) {
		if (elapsed >= full / sw_cfg.punt_rate)
			add = full;
		else
			add = elapsed * sw_cfg.punt_rate;
		tokens = full - tokens < add ? full : tokens + add;
	}
	b->last_ns = now;
	if (tokens < SW_TOKEN_SCALE) {
		b->tokens = tokens;
		return 0;
	}
	b->tokens = tokens - SW_TOKEN_SCALE;
	return 1;
}

static __always_inline void punt_fill_meta(struct punt_meta *m, struct xdp_md *ctx,
					   const struct packet *pkt, __u16 type, __u32 len)
{
	m->type = type;
	m->src_is_a = pkt->src_is_a;
	m->icmp_type = pkt->icmp_type;
	m->ifindex = ctx->ingress_ifindex;
	m->ts_ns = bpf_ktime_get_ns();
	m->pkt_len = len;
	m->cap_len = len;
	m->l3_off = pkt->l3_off;
	m->l4_off = pkt->l4_off;
	m->icmp_code = pkt->icmp_code;
	m->reserved0 = 0;
	m->bucket = flow_bucket(&pkt->key);
	m->key = pkt->key;
}

/*
 * Copies the whole frame and the metadata into a reserved record and
 * submits it (discards it if the copy fails). Returns 0 or the drop reason.
 */
static __always_inline int punt_submit(struct xdp_md *ctx, const struct packet *pkt, __u16 type,
				       struct punt_meta *meta, __u8 *buf, __u64 cap, __u64 len)
{
	/* variable-length copy: the verifier needs 1 <= len <= cap right here */
	if (len < 1 || len > cap || bpf_xdp_load_bytes(ctx, 0, buf, len)) {
		bpf_ringbuf_discard(meta, 0);
		return CNT_DROP_MALFORMED;
	}
	punt_fill_meta(meta, ctx, pkt, type, len);
	bpf_ringbuf_submit(meta, 0);
	return 0;
}

static __always_inline __u32 punt_counter(__u16 type)
{
	if (type == EV_FLOW_MISS)
		return CNT_PUNT_FLOW_MISS;
	return type == EV_HELPER ? CNT_PUNT_HELPER : CNT_PUNT_NEW;
}

/*
 * Sends the packet to the controller as a record of type (enum event_type)
 * and counts it; returns 0, or the drop reason if no record was sent.
 */
static __always_inline int punt_record(struct xdp_md *ctx, const struct packet *pkt, __u16 type)
{
	/* the length as a u64 of the frame itself, bounded before each copy */
	__u64 len = (__u64)((long)ctx->data_end - (long)ctx->data);
	int reason;

	if (len > SW_PUNT_DATA_MAX)
		return CNT_DROP_PUNT_TOO_BIG;
	if (!punt_take_token())
		return CNT_DROP_PUNT_LIMIT;
	/* most first packets fit the small record: less ring space per SYN */
	if (len <= SW_PUNT_DATA_SMALL) {
		struct punt_small *rec = bpf_ringbuf_reserve(&sw_punt_ring, sizeof(*rec), 0);

		if (!rec)
			return CNT_DROP_PUNT_RING_FULL;
		reason = punt_submit(ctx, pkt, type, &rec->meta, rec->data, sizeof(rec->data), len);
	} else {
		struct punt_full *rec = bpf_ringbuf_reserve(&sw_punt_ring, sizeof(*rec), 0);

		if (!rec)
			return CNT_DROP_PUNT_RING_FULL;
		reason = punt_submit(ctx, pkt, type, &rec->meta, rec->data, sizeof(rec->data), len);
	}
	if (reason)
		return reason;
	count(punt_counter(type));
	return 0;
}

/* Punts the packet (punt_record) and drops the original; returns the verdict. */
static __always_inline int punt(struct xdp_md *ctx, const struct packet *pkt, __u16 type)
{
	int reason = punt_record(ctx, pkt, type);

	return reason ? drop(reason) : XDP_DROP;
}

#endif /* SYNCWALL_PUNT_H */
