// Answers peers' state requests with `bulk` messages (triggers c and e):
// - flows: the entries this node holds for those keys, owned or replica (a
//   node that lacks a flow asks whoever may have it);
// - buckets / common / all: the entries this node is authoritative for
//   (buckets it owns), so each entry comes from one node even though the
//   requester asks every active peer. Chunked; the final message has `last`.
//   A big answer (a join at a million entries) is paced by the requester's
//   acks: between table chunks it waits until the peer's queue has room, so
//   nothing is dropped from a full queue.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey } from '../bpf/codec.js';
import type { ConnTable } from '../bpf/conn-table.js';
import { FlowFlag } from '../gen/layout.js';
import { bucketOf, SW_BUCKETS } from './bucket.js';
import type { ClusterStats } from './cluster-stats.js';
import { ClockReading, FlowRecords } from './flow-records.js';
import { MAX_ENTRIES_PER_MESSAGE, type SendFn } from './outbox.js';
import type { Ownership } from './ownership.js';
import type { SyncPayload } from './types.js';

export type StateRequest = Extract<SyncPayload, { kind: 'request' }>;

export interface StateServerDeps {
  table: Pick<ConnTable, 'lookupRaw' | 'scanChunks'>;
  selfId: number;
  current(): Ownership;
  send: SendFn;
  /** Resolves when the peer's send queue can take more (PeerTransport.waitForRoom). */
  waitForRoom(to: number): Promise<void>;
  stats: ClusterStats;
  monotonicNs(): bigint;
  chunk: number;
}

export class StateServer {
  private readonly d: StateServerDeps;
  private readonly key = new Uint8Array(FLOW_KEY_SIZE);
  private readonly value = new Uint8Array(FLOW_ENTRY_SIZE);

  constructor(deps: StateServerDeps) {
    this.d = deps;
  }

  async answer(from: number, req: StateRequest): Promise<void> {
    this.d.stats.add('requests_served');
    if (req.flows && req.flows.length > 0) return this.answerFlows(from, req.requestId, req);
    const wanted = new Uint8Array(SW_BUCKETS);
    for (const b of req.buckets ?? []) if (b >= 0 && b < SW_BUCKETS) wanted[b] = 1;
    // a table walk fills messages: each records buffer at full size from the start
    let batch = new FlowRecords(MAX_ENTRIES_PER_MESSAGE);
    await this.d.table.scanChunks(this.d.chunk, (keys, values, count) => {
      const owner = this.d.current().owner;
      const now = new ClockReading(this.d.monotonicNs());
      for (let i = 0; i < count; i++) {
        const kOff = i * FLOW_KEY_SIZE;
        const vOff = i * FLOW_ENTRY_SIZE;
        const b = bucketOf(keys, kOff);
        if (owner[b] !== this.d.selfId) continue;
        const common = (flowEntry.flags(values, vOff) & FlowFlag.FLOW_F_COMMON) !== 0;
        if (!req.all && wanted[b] !== 1 && !(req.common && common)) continue;
        batch.addEntry(keys, kOff, values, vOff, now);
        if (batch.length === MAX_ENTRIES_PER_MESSAGE) {
          this.sendBulk(from, req.requestId, batch, false);
          batch = new FlowRecords(MAX_ENTRIES_PER_MESSAGE);
        }
      }
      return this.d.waitForRoom(from).then(() => true);
    });
    this.sendBulk(from, req.requestId, batch, true);
  }

  private answerFlows(from: number, requestId: number, req: StateRequest): void {
    let found = new FlowRecords();
    const now = new ClockReading(this.d.monotonicNs());
    for (const k of req.flows ?? []) {
      flowKey.write(this.key, 0, k);
      if (!this.d.table.lookupRaw(this.key, this.value)) continue;
      found.addEntry(this.key, 0, this.value, 0, now);
      if (found.length === MAX_ENTRIES_PER_MESSAGE) {
        this.sendBulk(from, requestId, found, false);
        found = new FlowRecords();
      }
    }
    this.sendBulk(from, requestId, found, true);
  }

  private sendBulk(to: number, requestId: number, entries: FlowRecords, last: boolean): void {
    this.d.send(to, { kind: 'bulk', requestId, entries, last });
    this.d.stats.add('bulk_entries_sent', entries.length);
  }
}
