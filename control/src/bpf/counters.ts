// The data plane's per-CPU counters (sw_counters, a PERCPU_ARRAY indexed by
// enum sw_counter), summed over CPUs and named after the enum:
// CNT_DROP_OUT_OF_WINDOW is reported as drop_out_of_window.
import { mapLookupBatch, numPossibleCpus } from './libbpf.js';
import { SwCounter } from '../gen/layout.js';

/** Index -> report name for every counter of enum sw_counter (not the CNT__MAX bound). */
const COUNTER_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(SwCounter)
    .filter(([name]) => !name.includes('__'))
    .map(([name, index]) => [index, name.replace(/^CNT_/, '').toLowerCase()]),
);
const SLOTS = SwCounter.CNT__MAX;
/** Per-CPU values are laid out per CPU, each rounded up to 8 bytes: a u64 exactly. */
const VALUE_SIZE = 8;

/** Reads all counters with one batch lookup; returns name -> sum over all possible CPUs. */
export function readCounters(fd: number): Record<string, bigint> {
  const cpus = numPossibleCpus();
  const keys = new Uint8Array(SLOTS * 4);
  const values = new Uint8Array(SLOTS * cpus * VALUE_SIZE);
  const view = new DataView(values.buffer);
  // Array maps resume batches from a key-sized token.
  const { count } = mapLookupBatch(fd, null, new Uint8Array(4), keys, values, SLOTS);
  const keyView = new DataView(keys.buffer);
  const out: Record<string, bigint> = {};
  for (const name of COUNTER_NAMES.values()) out[name] = 0n;
  for (let i = 0; i < count; i++) {
    const name = COUNTER_NAMES.get(keyView.getUint32(i * 4, true));
    if (name === undefined) continue;
    let sum = 0n;
    for (let cpu = 0; cpu < cpus; cpu++) sum += view.getBigUint64((i * cpus + cpu) * VALUE_SIZE, true);
    out[name] = sum;
  }
  return out;
}
