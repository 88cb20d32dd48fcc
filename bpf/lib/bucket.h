/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The cluster bucket of a flow: a hash of the whole normalized flow_key,
 * modulo SW_BUCKETS. The key is the same for both directions, so both land
 * in one bucket. control/src/cluster/bucket.ts is the same function in
 * TypeScript; test/bpf/cluster-bucket.test.ts compares the two.
 *
 * The hash is a sum of the key's ten 32-bit words (read little-endian, so
 * every node agrees whatever its byte order) each times its own odd
 * constant, then murmur3's 32-bit finalizer. The ten multiplications are
 * independent, so the cost is a short dependency chain, not ten rounds;
 * keys differing in one word never collide before the finalizer (odd
 * multipliers are bijective mod 2^32), and the finalizer spreads every
 * bit into the low bits the modulo keeps.
 */
#ifndef SYNCWALL_BUCKET_H
#define SYNCWALL_BUCKET_H

#include <linux/types.h>
#include "flow_types.h"
#include "dp_config_types.h"

_Static_assert((SW_BUCKETS & (SW_BUCKETS - 1)) == 0, "SW_BUCKETS must be a power of two");
_Static_assert(sizeof(struct flow_key) == 40, "the bucket hash reads ten words");

static __always_inline __u32 key_word(const struct flow_key *k, int i)
{
	__u32 w;

	__builtin_memcpy(&w, (const __u8 *)k + 4 * i, sizeof(w));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap32(w);
#endif
	return w;
}

/* Returns the flow's bucket, 0 .. SW_BUCKETS - 1. */
static __always_inline __u32 flow_bucket(const struct flow_key *k)
{
	__u32 h = key_word(k, 0) * 0xf9b439fdU + key_word(k, 1) * 0x91d93081U +
		  key_word(k, 2) * 0x8142c8ebU + key_word(k, 3) * 0x3ceaaf31U +
		  key_word(k, 4) * 0xa05f1119U + key_word(k, 5) * 0x627655dbU +
		  key_word(k, 6) * 0xab13dfafU + key_word(k, 7) * 0x9dfb369bU +
		  key_word(k, 8) * 0x0944fe0dU + key_word(k, 9) * 0x0ff9bb51U;

	/* murmur3 fmix32 */
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h & (SW_BUCKETS - 1);
}

#endif /* SYNCWALL_BUCKET_H */
