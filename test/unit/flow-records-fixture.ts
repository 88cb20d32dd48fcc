// FlowRecords and FlowKeys (packed struct bytes in transit) to and from
// readable keys and key/entry pairs, for tests that build payloads or check
// what arrived. created_ns and last_seen_ns of these entries are "ns ago",
// as in transit.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey, type FlowEntry, type FlowKey } from '../../control/src/bpf/codec.js';
import { FlowKeys } from '../../control/src/cluster/flow-keys.js';
import { FlowRecords } from '../../control/src/cluster/flow-records.js';
import type { SyncPayload } from '../../control/src/cluster/types.js';

export interface PlainRecord {
  key: FlowKey;
  entry: FlowEntry;
}

export function recordsOf(list: readonly PlainRecord[]): FlowRecords {
  const out = new FlowRecords();
  for (const r of list) {
    const i = out.reserve();
    flowKey.write(out.keys, i * FLOW_KEY_SIZE, r.key);
    flowEntry.encode(out.values, i * FLOW_ENTRY_SIZE, r.entry);
    out.commit();
  }
  return out;
}

export function plain(records: FlowRecords): PlainRecord[] {
  return Array.from({ length: records.length }, (_, i) => ({
    key: flowKey.read(records.keys, i * FLOW_KEY_SIZE),
    entry: flowEntry.decode(records.values, i * FLOW_ENTRY_SIZE),
  }));
}

/** A record of the flow from 10.0.0.1:(1024 + i) to 10.0.1.x:80, every field derived from i. */
export function sampleRecord(i: number): PlainRecord {
  const w = { end: 1000 + i, maxEnd: 2000 + i, maxWin: 65535, maxAck: 3000 + i, scale: 7, flags: 0 };
  return {
    key: { family: 4, proto: 6, addrA: new Uint8Array([10, 0, 0, 1]), addrB: new Uint8Array([10, 0, 1, (i % 250) + 1]), portA: 1024 + i, portB: 80 },
    entry: {
      state: 3, flags: 1, helper: 0, lastDir: 0, ownerNode: 1, ruleId: 9, version: i,
      win: [w, { ...w, end: 5 }],
      lastSeenNs: 5_000_000n, packets: [BigInt(i), 2n], bytes: [BigInt(i) * 1500n, 2n ** 60n], createdNs: 1_000_000_000n, origIfindex: 0,
    },
  };
}

export function keysOf(list: readonly FlowKey[]): FlowKeys {
  const out = new FlowKeys();
  const bytes = new Uint8Array(FLOW_KEY_SIZE);
  for (const k of list) {
    flowKey.write(bytes, 0, k);
    out.add(bytes, 0);
  }
  return out;
}

export function plainKeys(keys: FlowKeys): FlowKey[] {
  return Array.from({ length: keys.length }, (_, i) => flowKey.read(keys.keys, i * FLOW_KEY_SIZE));
}

/** A payload with its records and keys readable, to compare what was sent with what arrived. */
export function readable(p: SyncPayload): unknown {
  if (p.kind === 'entries' || p.kind === 'bulk') return { ...p, entries: plain(p.entries) };
  if (p.kind === 'removes') return { ...p, keys: plainKeys(p.keys) };
  return p;
}
