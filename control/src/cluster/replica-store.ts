// Installs replicated entries from peers into the connection table and
// applies their removals, in batches.
//
// A replica is written as an ordinary entry with FLOW_F_REMOTE (see
// markReplica); it stays inert while this node does not own its bucket,
// so taking over a bucket needs no per-entry work. Records go from the
// received struct bytes (flow-records.ts) to the map in batches, in place:
// no object and no copy per entry. Rules:
// - an entry in a bucket this node owns is authoritative here: a replica
//   only fills the gap when there is no entry at all (join bulk, flow fetch);
// - otherwise the newer version wins, and for equal versions the fresher
//   last_seen (the periodic pass carries counters and windows, not a new
//   version), so a late or duplicate message never rolls an entry back.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, bytesLE, flowEntry, structFields } from '../bpf/codec.js';
import type { ConnTable } from '../bpf/conn-table.js';
import { FlowFlag, TcpWindowFlag } from '../gen/layout.js';
import { bucketOf } from './bucket.js';
import type { ClusterStats } from './cluster-stats.js';
import type { FlowKeys } from './flow-keys.js';
import { ClockReading, type FlowRecords } from './flow-records.js';

export type ReplicaTable = Pick<ConnTable, 'lookupRaw' | 'upsertBatch' | 'deleteBatch' | 'scanChunks'>;

export interface ReplicaStoreDeps {
  table: ReplicaTable;
  /** This node forwards the bucket now. */
  ownsBucket(bucket: number): boolean;
  stats: ClusterStats;
  monotonicNs(): bigint;
  /** Entries per map batch. */
  chunk: number;
}

export class ReplicaStore {
  private readonly d: ReplicaStoreDeps;
  /** Keys of removals and prunes, a chunk at a time. */
  private readonly keys: Uint8Array;
  private readonly current = new Uint8Array(FLOW_ENTRY_SIZE);

  constructor(deps: ReplicaStoreDeps) {
    this.d = deps;
    this.keys = new Uint8Array(deps.chunk * FLOW_KEY_SIZE);
  }

  /**
   * Installs the records that are new or newer here; returns how many were
   * written. Consumes `records`: each becomes a replica entry on this node's
   * clock in place, the wanted ones are packed to the front and written to
   * the map from there, a chunk per batch (no copy per record).
   */
  install(records: FlowRecords): number {
    const { table, stats } = this.d;
    const { keys, values } = records;
    const now = new ClockReading(this.d.monotonicNs());
    let kept = 0;
    for (let i = 0; i < records.length; i++) {
      records.rebuildTimes(i, now);
      markReplica(values, i * FLOW_ENTRY_SIZE);
      if (!this.wanted(records, i)) {
        stats.add('replicas_ignored');
        continue;
      }
      if (kept !== i) {
        keys.copyWithin(kept * FLOW_KEY_SIZE, i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE);
        values.copyWithin(kept * FLOW_ENTRY_SIZE, i * FLOW_ENTRY_SIZE, (i + 1) * FLOW_ENTRY_SIZE);
      }
      kept++;
    }
    for (let start = 0; start < kept; start += this.d.chunk) {
      const n = Math.min(this.d.chunk, kept - start);
      table.upsertBatch(keys.subarray(start * FLOW_KEY_SIZE), values.subarray(start * FLOW_ENTRY_SIZE), n);
    }
    stats.add('replicas_installed', kept);
    return kept;
  }

  /**
   * Deletes replicas of flows their owner removed; entries of buckets owned
   * here stay. Consumes `removed`: the keys to delete are packed to its front
   * and deleted from there, a chunk per batch.
   */
  remove(removed: FlowKeys): number {
    const { keys } = removed;
    let n = 0;
    for (let i = 0; i < removed.length; i++) {
      const off = i * FLOW_KEY_SIZE;
      if (this.d.ownsBucket(bucketOf(keys, off))) continue;
      if (n !== i) keys.copyWithin(n * FLOW_KEY_SIZE, off, off + FLOW_KEY_SIZE);
      n++;
    }
    let deleted = 0;
    for (let start = 0; start < n; start += this.d.chunk) {
      deleted += this.d.table.deleteBatch(keys.subarray(start * FLOW_KEY_SIZE), Math.min(this.d.chunk, n - start));
    }
    this.d.stats.add('replicas_removed', deleted);
    return deleted;
  }

  /**
   * Deletes the node-specific entries of buckets whose group (owner and
   * backups) no longer includes this node: after a join or a restart the
   * buckets' entries live on their new groups, and keeping ours would make
   * this node hold more than its (1+k)/N share. Common state stays.
   */
  async pruneOutside(inGroup: (bucket: number) => boolean): Promise<number> {
    let pruned = 0;
    await this.d.table.scanChunks(this.d.chunk, (keys, values, count) => {
      let n = 0;
      for (let i = 0; i < count; i++) {
        const kOff = i * FLOW_KEY_SIZE;
        if (flowEntry.flags(values, i * FLOW_ENTRY_SIZE) & FlowFlag.FLOW_F_COMMON) continue;
        if (inGroup(bucketOf(keys, kOff))) continue;
        this.keys.set(keys.subarray(kOff, kOff + FLOW_KEY_SIZE), n++ * FLOW_KEY_SIZE);
      }
      pruned += this.d.table.deleteBatch(this.keys, n);
      return true;
    });
    this.d.stats.add('replicas_pruned', pruned);
    return pruned;
  }

  /** Whether replica i of `records` should replace what the table holds. */
  private wanted(records: FlowRecords, i: number): boolean {
    const kOff = i * FLOW_KEY_SIZE;
    if (!this.d.table.lookupRaw(records.keys.subarray(kOff, kOff + FLOW_KEY_SIZE), this.current)) return true;
    if (this.d.ownsBucket(bucketOf(records.keys, kOff))) return false;
    const vOff = i * FLOW_ENTRY_SIZE;
    const version = flowEntry.version(records.values, vOff);
    const held = flowEntry.version(this.current, 0);
    if (version !== held) return versionNewer(version, held);
    return flowEntry.lastSeenNs(records.values, vOff) > flowEntry.lastSeenNs(this.current, 0);
  }
}

const E = structFields.entry;
const WINDOW_FLAGS = [E.win + structFields.window.flags, E.win + structFields.windowSize + structFields.window.flags];

/**
 * Makes the entry at values[off] a replica: FLOW_F_REMOTE set, both TCP
 * windows marked untrusted (the data plane re-learns them from the next
 * packet, since window edges are synced at a bounded rate), orig_ifindex 0
 * (interface numbers are per node).
 */
function markReplica(values: Uint8Array, off: number): void {
  values[off + E.flags]! |= FlowFlag.FLOW_F_REMOTE;
  for (const w of WINDOW_FLAGS) values[off + w]! |= TcpWindowFlag.TCPW_F_UNTRUSTED;
  bytesLE.putU32(values, off + E.origIfindex, 0);
}

/** a is newer than b in u32 serial-number arithmetic (versions may wrap). */
function versionNewer(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}
