// Which node owns each bucket and which nodes back it up, derived from the
// live membership alone, so every node computes the same table without a
// coordinator (docs/CLUSTER.md, "Ownership and backup groups").
//
// Load sharing uses rendezvous hashing: for bucket b every member gets the
// score hash(b, id); the highest score owns b and the next k back it up. A
// member joining or leaving moves only the buckets it wins or held, and
// every bucket's group is as random as its owner, so with 3 nodes and k=1
// each node backs up about half of each other node's buckets (the patent's
// cyclic arrangement in expectation). Standby ranks members by id: the
// lowest owns every bucket, the next k back up all of them.
import { SW_BUCKETS } from './bucket.js';

export type ClusterMode = 'load-sharing' | 'standby';

/** The ownership table for one membership. Immutable. */
export class Ownership {
  /** Member node ids, ascending. */
  readonly members: readonly number[];
  /** bucket → owning node id; 0 = nobody (no members). The data plane's sw_bucket_owner. */
  readonly owner: Uint32Array;
  /** Owner plus backups per bucket: 1 + min(k, members - 1), 0 without members. */
  readonly groupSize: number;
  /** bucket b's group at [b * groupSize, (b + 1) * groupSize): owner first, then backups in rank order. */
  private readonly groups: Uint32Array;

  constructor(members: readonly number[], groupSize: number, groups: Uint32Array) {
    this.members = members;
    this.groupSize = groupSize;
    this.groups = groups;
    this.owner = new Uint32Array(SW_BUCKETS);
    for (let b = 0; b < SW_BUCKETS && groupSize > 0; b++) this.owner[b] = groups[b * groupSize]!;
  }

  /** The i-th member of bucket b's group: 0 is the owner, 1.. the backups. */
  groupMember(b: number, i: number): number {
    return this.groups[b * this.groupSize + i]!;
  }

  /** Bucket b's backup group (allocates: for management views and tests). */
  backups(b: number): number[] {
    return Array.from(this.groups.subarray(b * this.groupSize + 1, (b + 1) * this.groupSize));
  }

  /** node is b's owner or one of its backups. */
  inGroup(b: number, node: number): boolean {
    for (let i = 0; i < this.groupSize; i++) if (this.groups[b * this.groupSize + i] === node) return true;
    return false;
  }

  /** How many buckets node owns. */
  ownedCount(node: number): number {
    let n = 0;
    for (let b = 0; b < SW_BUCKETS; b++) if (this.owner[b] === node) n++;
    return n;
  }

  /** How many buckets node backs up. */
  backedUpCount(node: number): number {
    let n = 0;
    for (let b = 0; b < SW_BUCKETS; b++) if (this.owner[b] !== node && this.inGroup(b, node)) n++;
    return n;
  }

  /** Buckets whose group contains node (owned or backed up). */
  bucketsServedBy(node: number): number[] {
    const out: number[] = [];
    for (let b = 0; b < SW_BUCKETS; b++) if (this.inGroup(b, node)) out.push(b);
    return out;
  }
}

/** Rendezvous score of (bucket, node): murmur3's finalizer over a mix of both. */
export function rendezvousScore(bucket: number, node: number): number {
  let h = (Math.imul(bucket + 1, 0x9e3779b1) ^ Math.imul(node, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The ownership table of the active members `members` (any order, duplicates ignored). */
export function computeOwnership(members: readonly number[], mode: ClusterMode, k: number): Ownership {
  const ids = [...new Set(members)].sort((a, b) => a - b);
  const groupSize = ids.length === 0 ? 0 : 1 + Math.min(k, ids.length - 1);
  const groups = new Uint32Array(SW_BUCKETS * groupSize);
  if (groupSize === 0) return new Ownership(ids, 0, groups);
  if (mode === 'standby') {
    for (let b = 0; b < SW_BUCKETS; b++) groups.set(ids.slice(0, groupSize), b * groupSize);
    return new Ownership(ids, groupSize, groups);
  }
  const scores = new Float64Array(ids.length);
  const order = ids.map((_, i) => i);
  for (let b = 0; b < SW_BUCKETS; b++) {
    for (let i = 0; i < ids.length; i++) scores[i] = rendezvousScore(b, ids[i]!);
    // Highest score first; equal scores (astronomically rare) by lower id.
    order.sort((x, y) => scores[y]! - scores[x]! || ids[x]! - ids[y]!);
    for (let i = 0; i < groupSize; i++) groups[b * groupSize + i] = ids[order[i]!]!;
  }
  return new Ownership(ids, groupSize, groups);
}
