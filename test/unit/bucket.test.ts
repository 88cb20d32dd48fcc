// The bucket hash in TypeScript (control/src/cluster/bucket.ts): range,
// independence from anything but the key's bytes, and an even spread.
// test/bpf/cluster-bucket.test.ts checks it against the data plane itself.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLOW_KEY_SIZE, flowKey } from '../../control/src/bpf/codec.js';
import { bucketOf, SW_BUCKETS } from '../../control/src/cluster/bucket.js';
import { addressBytes } from '../../control/src/net/address.js';
import { randomFlow } from './bucket-keys.js';

function keyBytes(i: number): Uint8Array {
  const f = randomFlow(i);
  const buf = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(buf, 0, { family: f.family, proto: f.proto, addrA: addressBytes(f.src), addrB: addressBytes(f.dst), portA: f.sport, portB: f.dport });
  return buf;
}

describe('bucketOf', () => {
  it('reads the key at its offset and nothing around it', () => {
    const key = keyBytes(1);
    const framed = new Uint8Array(7 + FLOW_KEY_SIZE + 5).fill(0xa5);
    framed.set(key, 7);
    assert.equal(bucketOf(framed, 7), bucketOf(key, 0));
  });

  it('depends on every byte of the key', () => {
    const key = keyBytes(2);
    const base = bucketOf(key, 0);
    // a one-bit change moves the bucket for most bytes; none is ignored outright
    for (let byte = 0; byte < FLOW_KEY_SIZE; byte++) {
      let moved = 0;
      for (let bit = 0; bit < 8; bit++) {
        const k = Uint8Array.from(key);
        k[byte]! ^= 1 << bit;
        if (bucketOf(k, 0) !== base) moved++;
      }
      assert.ok(moved >= 6, `flipping bits of byte ${byte} moved the bucket only ${moved} of 8 times`);
    }
  });

  it('spreads 100k random flows evenly: no bucket empty, none above 3x the average', () => {
    const n = 100_000;
    const counts = new Uint32Array(SW_BUCKETS);
    for (let i = 0; i < n; i++) {
      const b = bucketOf(keyBytes(i), 0);
      assert.ok(Number.isInteger(b) && b >= 0 && b < SW_BUCKETS, `bucket ${b} out of range`);
      counts[b]!++;
    }
    const average = n / SW_BUCKETS;
    const min = Math.min(...counts);
    const max = Math.max(...counts);
    assert.ok(min > 0, 'a bucket got no flow');
    assert.ok(max <= 3 * average, `a bucket got ${max} flows, average ${average.toFixed(1)}`);
  });

  it('spreads flows that differ only in the client port', () => {
    // the common real-world pattern: one client, one server, many source ports
    const counts = new Uint32Array(SW_BUCKETS);
    const buf = new Uint8Array(FLOW_KEY_SIZE);
    for (let port = 1024; port < 1024 + 64 * SW_BUCKETS; port++) {
      flowKey.write(buf, 0, { family: 4, proto: 6, addrA: addressBytes('10.0.0.1'), addrB: addressBytes('10.0.1.1'), portA: port, portB: 443 });
      counts[bucketOf(buf, 0)]!++;
    }
    assert.ok(Math.min(...counts) > 0, 'a bucket got no flow');
    assert.ok(Math.max(...counts) <= 3 * 64, `a bucket got ${Math.max(...counts)} flows, average 64`);
  });
});
