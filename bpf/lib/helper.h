/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Protocol helpers in the data plane: which packets of a helper-enabled flow
 * leave the fast path for the controller (EV_HELPER), and the hold behind
 * them.
 *
 * Only a packet whose payload starts a command that opens a related
 * connection is punted (FTP: PORT/EPRT from the client, 227/229 replies
 * from the server); every other packet of the control connection is
 * tracked and forwarded here. The punt happens before tracking, so the
 * controller's re-injection of the released packet is tracked as usual.
 *
 * Punting a command sets FLOW_F_HELD in the entry: from then on every
 * packet of the flow, both directions, is punted behind it, so the
 * controller re-injects them in order once the command is released (the
 * patent: "all subsequent data packets relating to the same connection are
 * also delayed"). The controller re-injects through xdp_syncwall_release,
 * which skips this file's checks, and clears FLOW_F_HELD when its queue is
 * empty. While the flag is set the data plane never writes the entry, so
 * the controller's read-modify-write of the flags loses nothing.
 */
#ifndef SYNCWALL_HELPER_H
#define SYNCWALL_HELPER_H

#include "parse.h"
#include "punt.h"

/* Bytes of payload the trigger check reads: the longest keyword ("PORT "). */
#define HELPER_PEEK 5

/* Lower case for ASCII letters; other bytes unchanged. */
static __always_inline __u8 ascii_lower(__u8 c)
{
	return c >= 'A' && c <= 'Z' ? c | 0x20 : c;
}

/*
 * FTP: the client (direction 0) sends PORT or EPRT in either case, the
 * server (direction 1) the 227 (PASV) or 229 (EPSV) reply.
 */
static __always_inline int ftp_opens_data(const __u8 *w, __u8 dir)
{
	if (dir == 0) {
		if (w[4] != ' ')
			return 0;
		if (ascii_lower(w[0]) == 'p' && ascii_lower(w[1]) == 'o' && ascii_lower(w[2]) == 'r' &&
		    ascii_lower(w[3]) == 't')
			return 1;
		return ascii_lower(w[0]) == 'e' && ascii_lower(w[1]) == 'p' && ascii_lower(w[2]) == 'r' &&
		       ascii_lower(w[3]) == 't';
	}
	return w[0] == '2' && w[1] == '2' && (w[2] == '7' || w[2] == '9') && w[3] == ' ';
}

/* Whether an established helper flow's packet carries a command its helper must see. */
static __always_inline int helper_trigger(struct xdp_md *ctx, const struct packet *pkt,
					  const struct flow_entry *e)
{
	__u8 w[HELPER_PEEK];

	if (e->helper != HELPER_FTP || e->state != FS_ESTABLISHED || pkt->kind != L4_TCP)
		return 0;
	if (pkt->l4_len < (__u32)pkt->tcp_doff + HELPER_PEEK)
		return 0;
	if (bpf_xdp_load_bytes(ctx, pkt->l4_off + pkt->tcp_doff, w, HELPER_PEEK))
		return 0;
	return ftp_opens_data(w, flow_dir(pkt->src_is_a, e->flags));
}

/*
 * Returns -1 if the packet stays on the fast path, else the verdict: the
 * packet was punted as EV_HELPER (the flow is held, or the packet is a
 * command, which holds it) or dropped because it could not be punted.
 */
static __always_inline int helper_filter(struct xdp_md *ctx, const struct packet *pkt,
					 struct flow_entry *e)
{
	__u8 held = e->flags & FLOW_F_HELD;
	int reason;

	if (!held && !helper_trigger(ctx, pkt, e))
		return -1;
	/* set before the record is visible: the controller may release at once */
	e->flags |= FLOW_F_HELD;
	reason = punt_record(ctx, pkt, EV_HELPER);
	if (reason) {
		/* nothing reached the controller: a lost command holds nothing */
		if (!held)
			e->flags &= ~FLOW_F_HELD;
		return drop(reason);
	}
	return XDP_DROP;
}

#endif /* SYNCWALL_HELPER_H */
