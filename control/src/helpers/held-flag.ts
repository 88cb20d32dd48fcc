// Clears an entry's FLOW_F_HELD once the controller holds nothing of the
// flow. A read-modify-write of the whole entry is safe only because of the
// flag itself: while it is set the data plane punts every packet of the flow
// and writes nothing to the entry (bpf/lib/helper.h), and the controller's
// own re-injections are synchronous and done by then.
import { FLOW_ENTRY_SIZE, flowEntry } from '../bpf/codec.js';
import { BPF_EXIST, BpfError, mapLookup, mapUpdate } from '../bpf/libbpf.js';
import { FlowFlag } from '../gen/layout.js';

export class HeldFlag {
  private readonly value = new Uint8Array(FLOW_ENTRY_SIZE);

  /** connsFd: sw_conns. */
  constructor(private readonly connsFd: number) {}

  /** Clears the flag of the entry for key (struct flow_key bytes); false if it was not set or the entry is gone. */
  clear(key: Uint8Array): boolean {
    if (!mapLookup(this.connsFd, key, this.value)) return false;
    const entry = flowEntry.decode(this.value, 0);
    if (!(entry.flags & FlowFlag.FLOW_F_HELD)) return false;
    flowEntry.encode(this.value, 0, { ...entry, flags: entry.flags & ~FlowFlag.FLOW_F_HELD });
    try {
      // EXIST: an entry removed meanwhile stays removed
      mapUpdate(this.connsFd, key, this.value, BPF_EXIST);
    } catch (err) {
      if (err instanceof BpfError && err.code === 'ENOENT') return false;
      throw err;
    }
    return true;
  }
}
