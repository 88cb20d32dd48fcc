// An in-memory connection table with the ConnTable calls cluster sync uses
// (lookupRaw, upsertBatch, deleteBatch, scanChunks), plus helpers to build
// entries, so replication and installation can be tested without root.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey, type FlowEntry, type FlowKey } from '../../control/src/bpf/codec.js';
import type { ChunkVisitor } from '../../control/src/bpf/conn-table.js';

const hex = (b: Uint8Array, off = 0): string => Buffer.from(b.subarray(off, off + FLOW_KEY_SIZE)).toString('hex');

export function tcpKey(n: number): FlowKey {
  return { family: 4, proto: 6, addrA: new Uint8Array([10, 0, (n >> 8) & 255, n & 255]), addrB: new Uint8Array([10, 1, 0, 1]), portA: 1024 + (n % 60000), portB: 80 };
}

export function keyBytes(k: FlowKey): Uint8Array {
  const b = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(b, 0, k);
  return b;
}

const window = () => ({ end: 1000, maxEnd: 2000, maxWin: 500, maxAck: 900, scale: 7, flags: 1 });

export function entry(overrides: Partial<FlowEntry> = {}): FlowEntry {
  return {
    state: 3, flags: 1, helper: 0, lastDir: 0, ownerNode: 1, ruleId: 5, version: 3,
    win: [window(), window()], lastSeenNs: 0n, packets: [10n, 8n], bytes: [1000n, 900n], createdNs: 0n, origIfindex: 4,
    ...overrides,
  };
}

export class MemoryTable {
  readonly rows = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  upserts = 0;

  put(k: FlowKey, e: FlowEntry): void {
    const value = new Uint8Array(FLOW_ENTRY_SIZE);
    flowEntry.encode(value, 0, e);
    const key = keyBytes(k);
    this.rows.set(hex(key), { key, value });
  }

  get(k: FlowKey): FlowEntry | undefined {
    const row = this.rows.get(hex(keyBytes(k)));
    return row && flowEntry.decode(row.value, 0);
  }

  lookupRaw(key: Uint8Array, value: Uint8Array): boolean {
    const row = this.rows.get(hex(key));
    if (!row) return false;
    value.set(row.value);
    return true;
  }

  upsertBatch(keys: Uint8Array, values: Uint8Array, count: number): void {
    if (count > 0) this.upserts++;
    for (let i = 0; i < count; i++) {
      const key = keys.slice(i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE);
      this.rows.set(hex(key), { key, value: values.slice(i * FLOW_ENTRY_SIZE, (i + 1) * FLOW_ENTRY_SIZE) });
    }
  }

  deleteBatch(keys: Uint8Array, count: number): number {
    let n = 0;
    for (let i = 0; i < count; i++) {
      const id = hex(keys, i * FLOW_KEY_SIZE);
      if (!this.rows.delete(id)) continue;
      keys.copyWithin(n * FLOW_KEY_SIZE, i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE);
      n++;
    }
    return n;
  }

  async scanChunks(chunk: number, visit: ChunkVisitor): Promise<number> {
    const rows = [...this.rows.values()];
    const keys = new Uint8Array(chunk * FLOW_KEY_SIZE);
    const values = new Uint8Array(chunk * FLOW_ENTRY_SIZE);
    for (let start = 0; start < rows.length; start += chunk) {
      const part = rows.slice(start, start + chunk);
      part.forEach((r, i) => {
        keys.set(r.key, i * FLOW_KEY_SIZE);
        values.set(r.value, i * FLOW_ENTRY_SIZE);
      });
      if ((await visit(keys, values, part.length)) === false) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return rows.length;
  }
}
