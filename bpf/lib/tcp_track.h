/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * TCP state machine and sequence-window validation, after netfilter's
 * nf_conntrack_proto_tcp.c (tcp_conntracks, tcp_in_window). Differences,
 * all on the strict side or for speed:
 *  - no mid-stream pickup: a flow starts with a SYN (FS_NONE + SYN);
 *  - "ignored" packets (sIG) pass without touching state or windows, but
 *    the resync from an ignored SYN's SYN/ACK is not done;
 *  - a SYN reopening a TIME_WAIT/CLOSE flow reinitializes the entry in
 *    place (netfilter deletes it and looks up again);
 *  - SACK blocks are not parsed: sack == ack, which bounds the peer by the
 *    window exactly instead of netfilter's more generous sack + win.
 *  - a direction marked TCPW_F_UNTRUSTED (a cluster replica, whose window
 *    edges were synced at a bounded rate and may lag the stream) re-learns
 *    its window from its next packet instead of checking it, and the other
 *    direction's ack is not checked against it until then.
 * The windows are validated on a copy and written back only if the packet
 * is valid, so an invalid packet never advances the state.
 */
#ifndef SYNCWALL_TCP_TRACK_H
#define SYNCWALL_TCP_TRACK_H

#include "parse.h"
#include "state_event.h"

enum tcp_index {
	TCP_SYN_SET,
	TCP_SYNACK_SET,
	TCP_FIN_SET,
	TCP_ACK_SET,
	TCP_RST_SET,
	TCP_NONE_SET,
	TCP_INDEX_MAX,
};

#define sNO FS_NONE
#define sSS FS_SYN_SENT
#define sSR FS_SYN_RECV
#define sES FS_ESTABLISHED
#define sFW FS_FIN_WAIT
#define sCW FS_CLOSE_WAIT
#define sLA FS_LAST_ACK
#define sTW FS_TIME_WAIT
#define sCL FS_CLOSE
#define sS2 FS_SYN_SENT2
#define sIV FS_MAX		/* invalid: drop */
#define sIG (FS_MAX + 1)	/* ignore: pass, change nothing */
#define TCP_STATES (FS_SYN_SENT2 + 1)

/* [direction][tcp_index][old state] -> new state, as netfilter's table. */
static const __u8 tcp_conntracks[2][TCP_INDEX_MAX][TCP_STATES] = {
	{
/* ORIGINAL	     sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 */
/* syn */	   { sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 },
/* synack */	   { sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR },
/* fin */	   { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/* ack */	   { sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV },
/* rst */	   { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/* none */	   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV },
	},
	{
/* REPLY	     sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 */
/* syn */	   { sIV, sS2, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sS2 },
/* synack */	   { sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
/* fin */	   { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/* ack */	   { sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG },
/* rst */	   { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/* none */	   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV },
	},
};

/* Largest ack distance below the receiver's end accepted (netfilter's MAXACKWINDOW). */
#define MAXACKWINCONST 66000

static __always_inline __u8 tcp_index_of(__u8 flags)
{
	if (flags & TCPF_RST)
		return TCP_RST_SET;
	if (flags & TCPF_SYN)
		return flags & TCPF_ACK ? TCP_SYNACK_SET : TCP_SYN_SET;
	if (flags & TCPF_FIN)
		return TCP_FIN_SET;
	if (flags & TCPF_ACK)
		return TCP_ACK_SET;
	return TCP_NONE_SET;
}

static __always_inline int seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

static __always_inline int seq_after(__u32 a, __u32 b)
{
	return seq_before(b, a);
}

/* A sender's window from its SYN or SYN/ACK (netfilter's tcp_new + tcp_options). */
static __always_inline void tcp_window_from_syn(struct tcp_window *w, const struct packet *pkt,
						__u32 end)
{
	w->td_end = end;
	w->td_maxend = end;
	w->td_maxwin = pkt->window ? pkt->window : 1;
	w->td_scale = pkt->opt_wscale;
	w->flags = pkt->opt_flags;
}

/*
 * An untrusted sender window takes its edges from this segment: it ends
 * here, may reach a receiver's window beyond (the sender may have more in
 * flight before the receiver's next ack tells us), and the maximum ack is
 * taken from this segment on. Edges only grow where they cannot be stale.
 */
static __always_inline void tcp_window_relearn(struct tcp_window *sender,
					       const struct tcp_window *receiver,
					       const struct packet *pkt, __u32 end)
{
	__u32 win = pkt->window, maxend = end + (receiver->td_maxwin ? receiver->td_maxwin : 1);

	/* RFC 7323: the window in a SYN is never scaled */
	if (!(pkt->tcp_flags & TCPF_SYN))
		win <<= sender->td_scale & 15;
	sender->td_end = end;
	if (seq_after(maxend, sender->td_maxend))
		sender->td_maxend = maxend;
	if (sender->td_maxwin < win)
		sender->td_maxwin = win;
	if (sender->td_maxwin == 0)
		sender->td_maxwin = 1;
	sender->flags &= ~(TCPW_F_UNTRUSTED | TCPW_F_MAXACK_SET);
}

/* netfilter's tcp_in_window on the copies; returns 1 if the segment is valid. */
static __always_inline int tcp_in_window(struct tcp_window *sender, struct tcp_window *receiver,
					 __u8 state, __u8 dir, const struct packet *pkt, __u32 end)
{
	__u8 flags = pkt->tcp_flags;
	__u32 seq = pkt->seq, ack = pkt->ack, sack, win = pkt->window, swin, maxackwin;
	/* a replica's stale edges: no check against them until re-learned (a side that never sent learns as usual) */
	int relearn = (sender->flags & TCPW_F_UNTRUSTED) && sender->td_maxwin != 0;
	int check_ack = !(receiver->flags & TCPW_F_UNTRUSTED);

	if (sender->td_maxwin == 0) {
		if (flags & TCPF_SYN) {
			/* SYN/ACK answering the SYN, or the reply's SYN in a simultaneous open */
			tcp_window_from_syn(sender, pkt, end);
			/* RFC 7323: scaling only if both sides offered it */
			if (!(sender->flags & receiver->flags & TCPW_F_WINDOW_SCALE)) {
				sender->td_scale = 0;
				receiver->td_scale = 0;
			}
			if (!(flags & TCPF_ACK))
				return 1;
		} else {
			/* first segment of this side without a SYN (a RST answering the SYN) */
			sender->td_end = end;
			win <<= sender->td_scale & 15;
			sender->td_maxwin = win ? win : 1;
			sender->td_maxend = end + sender->td_maxwin;
			if (receiver->td_maxwin == 0) {
				receiver->td_end = ack;
				receiver->td_maxend = ack;
			}
		}
	} else if (relearn) {
		tcp_window_relearn(sender, receiver, pkt, end);
	} else if (((state == FS_SYN_SENT && dir == 0) || (state == FS_SYN_RECV && dir == 1)) &&
		   seq_after(end, sender->td_end)) {
		/* RFC 793: a reinitialized TCP must only use larger sequence numbers */
		tcp_window_from_syn(sender, pkt, end);
	}

	if (!(flags & TCPF_ACK))
		/* no ACK: pretend it acknowledges everything seen */
		ack = receiver->td_end;
	else if ((flags & TCPF_RST) && ack == 0)
		/* stacks that send RST+ACK with a zero ack */
		ack = receiver->td_end;
	sack = ack;

	/* empty segments are checked by their ack only; RSTs always by seq (except answering a SYN) */
	if (seq == end && (!(flags & TCPF_RST) || (seq == 0 && state == FS_SYN_SENT))) {
		seq = sender->td_end;
		end = sender->td_end;
	}

	maxackwin = sender->td_maxwin > MAXACKWINCONST ? sender->td_maxwin : MAXACKWINCONST;
	if (!relearn &&
	    !(seq_before(seq, sender->td_maxend + 1) &&
	      seq_after(end, sender->td_end - receiver->td_maxwin - 1) &&
	      (!check_ack || (seq_before(sack, receiver->td_end + 1) &&
			      seq_after(sack, receiver->td_end - maxackwin - 1)))))
		return 0;
	/* the window now comes from this side's own packets */
	sender->flags &= ~TCPW_F_UNTRUSTED;

	/* RFC 7323: the window in a SYN is never scaled */
	if (!(flags & TCPF_SYN))
		win <<= sender->td_scale & 15;
	swin = win + (sack - ack);
	if (sender->td_maxwin < swin)
		sender->td_maxwin = swin;
	if (seq_after(end, sender->td_end))
		sender->td_end = end;
	if (flags & TCPF_ACK) {
		if (!(sender->flags & TCPW_F_MAXACK_SET)) {
			sender->td_maxack = ack;
			sender->flags |= TCPW_F_MAXACK_SET;
		} else if (seq_after(ack, sender->td_maxack)) {
			sender->td_maxack = ack;
		}
	}
	if (receiver->td_maxwin != 0 && seq_after(end, sender->td_maxend))
		receiver->td_maxwin += end - sender->td_maxend;
	if (seq_after(sack + win, receiver->td_maxend - 1)) {
		receiver->td_maxend = sack + win;
		if (win == 0)
			receiver->td_maxend++;
	}
	return 1;
}

/*
 * Tracks one TCP segment of the entry's flow. Returns 0 if it is accepted
 * (state and windows updated), else the sw_counter drop reason.
 */
static __always_inline int tcp_track(const struct packet *pkt, struct flow_entry *e, __u8 dir)
{
	struct tcp_window w[2];
	__u8 index = tcp_index_of(pkt->tcp_flags);
	__u8 old_state = e->state, new_state, window_state = old_state;
	__u32 end;
	int ok;

	if (old_state >= TCP_STATES)
		return CNT_DROP_TCP_STATE;
	/* FS_NONE: the controller admitted the flow; only its SYN may start it */
	if (old_state == FS_NONE && index != TCP_SYN_SET)
		return CNT_DROP_TCP_STATE;
	new_state = tcp_conntracks[dir & 1][index][old_state];
	if (new_state == sIV)
		return CNT_DROP_TCP_STATE;
	if (new_state == sIG)
		return 0;

	/* sequence space used by the segment: payload, SYN and FIN count one each */
	end = pkt->seq + (pkt->l4_len - pkt->tcp_doff) + !!(pkt->tcp_flags & TCPF_SYN) +
	      !!(pkt->tcp_flags & TCPF_FIN);
	__builtin_memcpy(w, e->win, sizeof(w));
	if (old_state == FS_NONE || (new_state == FS_SYN_SENT && old_state >= FS_TIME_WAIT)) {
		/* a new connection (or one reopening a closed tuple) starts from its SYN */
		__builtin_memset(w, 0, sizeof(w));
		tcp_window_from_syn(&w[0], pkt, end);
		window_state = FS_NONE;
	}

	/* a RST below what the peer acked is stale (unless that ack is a replica's) */
	if (dir == 0) {
		if (index == TCP_RST_SET && (w[1].flags & (TCPW_F_MAXACK_SET | TCPW_F_UNTRUSTED)) ==
		    TCPW_F_MAXACK_SET && seq_before(pkt->seq, w[1].td_maxack))
			return CNT_DROP_RST_INVALID;
		ok = tcp_in_window(&w[0], &w[1], window_state, 0, pkt, end);
	} else {
		if (index == TCP_RST_SET && (w[0].flags & (TCPW_F_MAXACK_SET | TCPW_F_UNTRUSTED)) ==
		    TCPW_F_MAXACK_SET && seq_before(pkt->seq, w[0].td_maxack))
			return CNT_DROP_RST_INVALID;
		ok = tcp_in_window(&w[1], &w[0], window_state, 1, pkt, end);
	}
	if (!ok)
		return index == TCP_RST_SET ? CNT_DROP_RST_INVALID : CNT_DROP_OUT_OF_WINDOW;

	/* the side that sends the first FIN closes actively */
	if (old_state != new_state && new_state == FS_FIN_WAIT)
		w[dir & 1].flags |= TCPW_F_CLOSE_INIT;
	__builtin_memcpy(e->win, w, sizeof(w));
	if (old_state != new_state)
		flow_set_state(e, &pkt->key, new_state, dir);
	return 0;
}

#endif /* SYNCWALL_TCP_TRACK_H */
