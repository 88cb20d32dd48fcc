// Bucket ownership: deterministic, balanced, backups take over on failure,
// joins move only the joiner's share; standby is one owner for everything.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SW_BUCKETS } from '../../control/src/cluster/bucket.js';
import { computeOwnership } from '../../control/src/cluster/ownership.js';

const buckets = Array.from({ length: SW_BUCKETS }, (_, b) => b);

test('every node computes the same table from the same members, in any order', () => {
  const a = computeOwnership([3, 1, 2], 'load-sharing', 1);
  const b = computeOwnership([1, 2, 3, 2], 'load-sharing', 1);
  assert.deepEqual(a.owner, b.owner);
  assert.deepEqual(buckets.map((x) => a.backups(x)), buckets.map((x) => b.backups(x)));
  assert.deepEqual(a.members, [1, 2, 3]);
});

test('each bucket has an owner and k distinct backups, all members', () => {
  const o = computeOwnership([1, 2, 3, 4], 'load-sharing', 2);
  assert.equal(o.groupSize, 3);
  for (const b of buckets) {
    const group = [o.owner[b]!, ...o.backups(b)];
    assert.equal(new Set(group).size, 3);
    for (const n of group) assert.ok([1, 2, 3, 4].includes(n));
    assert.ok(o.inGroup(b, o.owner[b]!));
  }
});

test('load sharing spreads owners and backups evenly (3 nodes, k=1: a cyclic arrangement in expectation)', () => {
  const o = computeOwnership([1, 2, 3], 'load-sharing', 1);
  for (const n of [1, 2, 3]) {
    const owned = o.ownedCount(n);
    assert.ok(Math.abs(owned - SW_BUCKETS / 3) < SW_BUCKETS * 0.06, `node ${n} owns ${owned}`);
    assert.ok(Math.abs(o.backedUpCount(n) - SW_BUCKETS / 3) < SW_BUCKETS * 0.06);
    // Its buckets' backups are split between the two others.
    const mine = buckets.filter((b) => o.owner[b] === n);
    const others = [1, 2, 3].filter((m) => m !== n);
    for (const m of others) {
      const share = mine.filter((b) => o.backups(b)[0] === m).length / mine.length;
      assert.ok(share > 0.4 && share < 0.6, `node ${m} backs up ${share} of node ${n}'s buckets`);
    }
  }
});

test("a failed node's buckets go to their first backup; no other bucket moves", () => {
  const before = computeOwnership([1, 2, 3, 4], 'load-sharing', 1);
  const after = computeOwnership([1, 2, 4], 'load-sharing', 1);
  for (const b of buckets) {
    if (before.owner[b] === 3) assert.equal(after.owner[b], before.backups(b)[0]);
    else assert.equal(after.owner[b], before.owner[b]);
  }
  assert.equal(after.ownedCount(3), 0);
});

test('a joining node takes only its own share; other buckets keep their owner', () => {
  const before = computeOwnership([1, 2, 3], 'load-sharing', 1);
  const after = computeOwnership([1, 2, 3, 4], 'load-sharing', 1);
  let moved = 0;
  for (const b of buckets) {
    if (after.owner[b] !== before.owner[b]) {
      assert.equal(after.owner[b], 4);
      moved++;
    }
  }
  assert.ok(Math.abs(moved - SW_BUCKETS / 4) < SW_BUCKETS * 0.06, `moved ${moved}`);
});

test('standby: the lowest id owns every bucket, the next k back all of them up', () => {
  const o = computeOwnership([7, 3, 5], 'standby', 1);
  for (const b of buckets) {
    assert.equal(o.owner[b], 3);
    assert.deepEqual(o.backups(b), [5]);
  }
  assert.equal(o.ownedCount(3), SW_BUCKETS);
  assert.equal(o.backedUpCount(5), SW_BUCKETS);
  assert.equal(o.backedUpCount(7), 0);
  const failover = computeOwnership([7, 5], 'standby', 1);
  assert.equal(failover.owner[0], 5);
});

test('k is capped by the members; no members own nothing', () => {
  const two = computeOwnership([1, 2], 'load-sharing', 3);
  assert.equal(two.groupSize, 2);
  const one = computeOwnership([1], 'load-sharing', 1);
  assert.equal(one.groupSize, 1);
  assert.equal(one.ownedCount(1), SW_BUCKETS);
  assert.deepEqual(one.backups(0), []);
  const none = computeOwnership([], 'load-sharing', 1);
  assert.equal(none.groupSize, 0);
  assert.ok(none.owner.every((n) => n === 0));
  assert.deepEqual(none.bucketsServedBy(1), []);
});
