// Hold-time quantiles from the log-scale histogram: within one bucket
// (≈9 %) of the exact value, never above the largest sample.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram } from '../../control/src/stats/latency-histogram.js';

test('p50 and p99 are within a bucket of the exact quantiles', () => {
  const h = new LatencyHistogram();
  // 1..1000 µs, each once: exact p50 500, p99 990
  for (let us = 1; us <= 1000; us++) h.record(us);
  const p50 = h.quantileUs(0.5);
  const p99 = h.quantileUs(0.99);
  assert.ok(p50 >= 500 && p50 <= 500 * 1.1, `p50 ${p50}`);
  assert.ok(p99 >= 990 && p99 <= 1000, `p99 ${p99}`);
  assert.deepEqual(h.counters('hold'), { hold_samples: 1000n, hold_p50_us: BigInt(p50), hold_p99_us: BigInt(p99), hold_max_us: 1000n });
});

test('no samples read as zero; sub-microsecond and huge holds land in the end buckets', () => {
  const h = new LatencyHistogram();
  assert.equal(h.quantileUs(0.99), 0);
  h.record(0.2);
  assert.equal(h.quantileUs(0.5), 0.2);
  h.record(1e12);
  assert.equal(h.quantileUs(1), 1e12);
});
