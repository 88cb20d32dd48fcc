// Open-addressing hash table from a fixed-width key of int32 words to the
// lowest rule id stored under it. Lookups mask the query's words on the fly,
// so probing a tuple-space group builds no key object and allocates nothing.

function mix(h: number, w: number): number {
  // murmur3's per-word step
  let k = Math.imul(w, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h;
}

export class KeyTable {
  /** Indices of the query words that take part in the key. */
  private readonly words: Int32Array;
  /** Mask applied to each of those words. */
  private readonly masks: Int32Array;
  private keys: Int32Array;
  /** Rule id per slot; 0 marks an empty slot. */
  private ids: Int32Array;
  private size = 0;

  constructor(words: readonly number[], masks: readonly number[]) {
    this.words = Int32Array.from(words);
    this.masks = Int32Array.from(masks);
    this.keys = new Int32Array(8 * words.length);
    this.ids = new Int32Array(8);
  }

  get count(): number {
    return this.size;
  }

  /** Stores id under the masked key unless a lower id is already there. */
  insert(query: Int32Array, id: number): void {
    if (2 * (this.size + 1) > this.ids.length) this.grow();
    const slot = this.find(query);
    const stored = this.ids[slot]!;
    if (stored === 0) {
      const n = this.words.length;
      for (let i = 0; i < n; i++) this.keys[slot * n + i] = query[this.words[i]!]! & this.masks[i]!;
      this.ids[slot] = id;
      this.size++;
    } else if (id < stored) {
      this.ids[slot] = id;
    }
  }

  /** The id stored under the query's masked key, or 0. */
  lookup(query: Int32Array): number {
    return this.ids[this.find(query)]!;
  }

  /** The slot holding the query's masked key, or the empty slot where it would go. */
  private find(query: Int32Array): number {
    const { words, masks, keys, ids } = this;
    const n = words.length;
    let h = 0;
    for (let i = 0; i < n; i++) h = mix(h, query[words[i]!]! & masks[i]!);
    const capMask = ids.length - 1;
    let slot = finish(h) & capMask;
    for (;;) {
      if (ids[slot] === 0) return slot;
      const base = slot * n;
      let i = 0;
      while (i < n && keys[base + i] === (query[words[i]!]! & masks[i]!)) i++;
      if (i === n) return slot;
      slot = (slot + 1) & capMask;
    }
  }

  private grow(): void {
    const n = this.words.length;
    const oldKeys = this.keys;
    const oldIds = this.ids;
    this.keys = new Int32Array(oldKeys.length * 2);
    this.ids = new Int32Array(oldIds.length * 2);
    this.size = 0;
    // Re-inserting needs the key laid out as a query: scatter it back.
    const query = new Int32Array(Math.max(...this.words) + 1);
    for (let slot = 0; slot < oldIds.length; slot++) {
      if (oldIds[slot] === 0) continue;
      for (let i = 0; i < n; i++) query[this.words[i]!] = oldKeys[slot * n + i]!;
      this.insert(query, oldIds[slot]!);
    }
  }
}
