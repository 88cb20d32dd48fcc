// The cluster bucket of a flow, exactly as bpf/lib/bucket.h computes it: a
// sum of the normalized struct flow_key's ten little-endian 32-bit words,
// each times its own odd constant, then murmur3's 32-bit finalizer, modulo
// SW_BUCKETS. test/bpf/cluster-bucket.test.ts checks it against the real
// object, so the two cannot drift apart silently.
import { FLOW_KEY_SIZE } from '../bpf/codec.js';

/** Number of buckets (bpf/include/dp_config_types.h SW_BUCKETS; the size of sw_bucket_owner). */
export const SW_BUCKETS = 1024;

const MULTIPLIERS = [
  0xf9b439fd, 0x91d93081, 0x8142c8eb, 0x3ceaaf31, 0xa05f1119, 0x627655db, 0xab13dfaf, 0x9dfb369b, 0x0944fe0d, 0x0ff9bb51,
] as const;

if (MULTIPLIERS.length * 4 !== FLOW_KEY_SIZE) throw new Error(`the bucket hash reads ${MULTIPLIERS.length} words, struct flow_key has ${FLOW_KEY_SIZE} bytes`);

/** The bucket of the struct flow_key at keyBuf[keyOff..keyOff + 40): 0 .. SW_BUCKETS - 1. Allocates nothing. */
export function bucketOf(keyBuf: Uint8Array, keyOff: number): number {
  let h = 0;
  for (let i = 0; i < MULTIPLIERS.length; i++) {
    const o = keyOff + 4 * i;
    const w = keyBuf[o]! | (keyBuf[o + 1]! << 8) | (keyBuf[o + 2]! << 16) | (keyBuf[o + 3]! << 24);
    h = (h + Math.imul(w, MULTIPLIERS[i]!)) | 0;
  }
  // murmur3 fmix32
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) & (SW_BUCKETS - 1);
}
