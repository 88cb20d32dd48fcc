// Removes idle entries. Every interval the sweeper walks the whole table
// with batch lookups (a chunk at a time, yielding to the event loop between
// chunks), collects entries idle past their state's timeout, re-reads each
// candidate (the data plane may have refreshed it since the chunk was read),
// deletes the still-expired ones in one batch and reports them as removed.
// A full pass also counts the table (census): `syncwall status` reports that
// count instead of walking millions of entries itself.
import { FLOW_KEY_SIZE, flowEntry, flowKey } from '../bpf/codec.js';
import type { ConnTable } from '../bpf/conn-table.js';
import { FlowFlag } from '../gen/layout.js';
import type { Logger } from '../log.js';
import type { ControllerStats } from './controller-stats.js';
import type { FlowEventFeed } from './flow-events.js';
import type { TimeoutTable } from './timeouts.js';

export interface ExpiryDeps {
  table: ConnTable;
  timeouts: TimeoutTable;
  events: FlowEventFeed;
  stats: ControllerStats;
  log: Logger;
  intervalMs: number;
  chunk: number;
  monotonicNs: () => bigint;
}

export class ExpirySweeper {
  private readonly d: ExpiryDeps;
  private readonly expiredKeys: Uint8Array;
  /** Flags of each expired entry, reported with its removal (cluster sync routes by them). */
  private readonly expiredFlags: Uint8Array;
  private readonly value: Uint8Array;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private lastCensus: { entries: number; atMs: number } | undefined;

  constructor(deps: ExpiryDeps) {
    this.d = deps;
    this.expiredKeys = new Uint8Array(deps.chunk * FLOW_KEY_SIZE);
    this.expiredFlags = new Uint8Array(deps.chunk);
    this.value = new Uint8Array(flowEntry.size);
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.sweep().finally(() => (this.running = undefined));
    }, this.d.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /** Entries left after the last full pass and when it ended (performance.now()); undefined before the first. */
  census(): { entries: number; atMs: number } | undefined {
    return this.lastCensus;
  }

  /** One full pass over the table; returns how many entries expired. */
  async sweep(): Promise<number> {
    const { table, timeouts } = this.d;
    let expired = 0;
    const seen = await table.scanChunks(this.d.chunk, (keys, values, count) => {
      if (this.stopped) return false;
      const now = Number(this.d.monotonicNs());
      let n = 0;
      for (let i = 0; i < count; i++) {
        const kOff = i * FLOW_KEY_SIZE;
        const vOff = i * flowEntry.size;
        const limit = timeouts.timeoutNs(flowKey.proto(keys, kOff), flowEntry.state(values, vOff));
        if (now - flowEntry.lastSeenNs(values, vOff) > limit) {
          this.expiredKeys.set(keys.subarray(kOff, kOff + FLOW_KEY_SIZE), n * FLOW_KEY_SIZE);
          n++;
        }
      }
      expired += this.removeStillExpired(n, now);
      return true;
    });
    if (!this.stopped) this.lastCensus = { entries: seen - expired, atMs: performance.now() };
    return expired;
  }

  private removeStillExpired(candidates: number, now: number): number {
    const { table, timeouts } = this.d;
    let confirmed = 0;
    for (let i = 0; i < candidates; i++) {
      const key = this.expiredKeys.subarray(i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE);
      if (!table.lookupRaw(key, this.value)) continue;
      const limit = timeouts.timeoutNs(flowKey.proto(key, 0), flowEntry.state(this.value, 0));
      if (now - flowEntry.lastSeenNs(this.value, 0) <= limit) continue;
      if (confirmed !== i) this.expiredKeys.copyWithin(confirmed * FLOW_KEY_SIZE, i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE);
      this.expiredFlags[confirmed] = flowEntry.flags(this.value, 0);
      confirmed++;
    }
    const deleted = table.deleteBatch(this.expiredKeys, confirmed);
    for (let i = 0; i < deleted; i++) {
      this.d.events.removed(this.expiredKeys.subarray(i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE), 'expired', this.flagsOfDeleted(i, deleted, confirmed));
    }
    this.d.stats.add('expired', deleted);
    return deleted;
  }

  /**
   * Flags of the i-th deleted key. deleteBatch compacts the keys when one was
   * already gone, and then which flags belong to which key is lost: report
   * FLOW_F_COMMON, which makes cluster sync tell every peer (a superset).
   */
  private flagsOfDeleted(i: number, deleted: number, confirmed: number): number {
    return deleted === confirmed ? this.expiredFlags[i]! : FlowFlag.FLOW_F_COMMON;
  }
}
