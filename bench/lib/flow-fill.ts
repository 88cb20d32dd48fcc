// Fills a flow table (a BPF hash keyed by struct flow_key, valued by struct
// flow_entry) with filler entries in batched map updates, so item 1 can
// measure lookups in a table of 1k, 100k or 1M entries. Fillers are TCP
// flows from 10.0.0.0/8 to port 443: no benchmark frame ever matches one.
import { flowEntry, flowKey } from '../../control/src/bpf/codec.js';
import { mapUpdateBatch } from '../../control/src/bpf/libbpf.js';
import { IPPROTO_TCP } from '../../control/src/net/protocols.js';

const BATCH = 65_536;
/** A filler's fixed server side; 10.x sources sort below it, so the keys are also normalized. */
const FILLER_SERVER = Uint8Array.of(192, 0, 2, 1);

/** Inserts `count` (< 2^24) distinct filler entries (blank FS_NONE values) into the map. */
export function fillFlowTable(mapFd: number, count: number): void {
  const batch = Math.min(BATCH, Math.max(count, 1));
  const keys = new Uint8Array(batch * flowKey.size);
  const values = new Uint8Array(batch * flowEntry.size);
  for (let i = 0; i < batch; i++) flowEntry.encodeNew(values, i * flowEntry.size, { flags: 0, ruleId: 0, helper: 0, ownerNode: 0, origIfindex: 1, createdNs: 1n });
  let pending = 0;
  for (let i = 0; i < count; i++) {
    const src = Uint8Array.of(10, (i >>> 16) & 255, (i >>> 8) & 255, i & 255);
    flowKey.write(keys, pending * flowKey.size, { family: 4, proto: IPPROTO_TCP, addrA: src, addrB: FILLER_SERVER, portA: 1024, portB: 443 });
    if (++pending === batch) {
      mapUpdateBatch(mapFd, keys, values, pending);
      pending = 0;
    }
  }
  if (pending > 0) mapUpdateBatch(mapFd, keys, values, pending);
}
