// Latencies (how long held packets waited, how long a first packet took
// from the punt to its re-injection) as a log-scale histogram: buckets grow
// by 2^(1/8) (≈9 %) from 1 µs, so quantiles are within 9 % of the truth with
// a fixed, small array whatever the number of samples.
const STEPS_PER_DOUBLING = 8;
/** 1 µs .. 2^27 µs (≈2 min); longer samples land in the last bucket. */
const BUCKETS = 27 * STEPS_PER_DOUBLING + 1;

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private maxUs = 0;

  record(us: number): void {
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log2(us) * STEPS_PER_DOUBLING));
    this.counts[i]!++;
    this.total++;
    if (us > this.maxUs) this.maxUs = us;
  }

  get samples(): number {
    return this.total;
  }

  /** The upper bound of the bucket holding quantile q (0 < q ≤ 1), in µs; 0 without samples. */
  quantileUs(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen < rank) continue;
      // the last bucket is open-ended: its bound is the largest sample
      return i === BUCKETS - 1 ? this.maxUs : Math.min(this.maxUs, Math.round(2 ** (i / STEPS_PER_DOUBLING)));
    }
    return this.maxUs;
  }

  /** Counters for `syncwall stats`: samples, p50, p99 and max, with the given name prefix. */
  counters(prefix: string): Record<string, bigint> {
    return {
      [`${prefix}_samples`]: BigInt(this.total),
      [`${prefix}_p50_us`]: BigInt(Math.round(this.quantileUs(0.5))),
      [`${prefix}_p99_us`]: BigInt(Math.round(this.quantileUs(0.99))),
      [`${prefix}_max_us`]: BigInt(Math.round(this.maxUs)),
    };
  }
}
