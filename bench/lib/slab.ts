// Kernel slab usage from /proc/slabinfo (root only): the bytes in whole
// slabs of the caches a filter selects, to measure what a kernel table with
// a cache of its own (nf_conntrack) costs per entry as the growth over a fill.
import { readFileSync } from 'node:fs';

export interface SlabCache {
  name: string;
  objSize: number;
  /** Bytes in the cache's slabs (num_slabs × pagesperslab × page size). */
  bytes: number;
}

const PAGE = 4096;

export function slabCaches(select: (name: string) => boolean): SlabCache[] {
  const out: SlabCache[] = [];
  for (const line of readFileSync('/proc/slabinfo', 'utf8').split('\n')) {
    // name active_objs num_objs objsize objperslab pagesperslab : tunables ... : slabdata active_slabs num_slabs sharedavail
    const f = line.split(/\s+/);
    const slabdata = f.indexOf('slabdata');
    if (slabdata < 0 || !select(f[0]!)) continue;
    out.push({ name: f[0]!, objSize: Number(f[3]), bytes: Number(f[slabdata + 2]) * Number(f[5]) * PAGE });
  }
  return out;
}
