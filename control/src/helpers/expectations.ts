// The controller's table of expected related connections (helper
// expectations): a few entries at a time (one per FTP transfer being set
// up), so a Map keyed by the connection's fixed end (family, protocol,
// to-address, to-port) with a second index by control connection. Every
// node holds every expectation (common state); the node that sees the
// connection's first packet takes it. An expectation dies when it is used,
// when it expires unused, or when its control connection is removed.
import { FLOW_KEY_SIZE, flowKey } from '../bpf/codec.js';
import type { ExpectationRecord } from '../cluster/types.js';

export interface Expectation extends Omit<ExpectationRecord, 'ttlMs'> {
  /** On this node's clock (ms). */
  expiresAt: number;
}

/** The tuple of a connection's first packet. */
export interface FirstPacketTuple {
  family: number;
  proto: number;
  src: Uint8Array;
  sport: number;
  dst: Uint8Array;
  dport: number;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

function slotOf(family: number, proto: number, to: Uint8Array, toPort: number): string {
  return `${family}/${proto}/${hex(to)}/${toPort}`;
}

/** The hex of a struct flow_key, the control-connection index's key. */
export function controlId(k: ExpectationRecord['control']): string {
  const buf = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(buf, 0, k);
  return hex(buf);
}

function sameExpectation(a: Omit<ExpectationRecord, 'ttlMs'>, b: Omit<ExpectationRecord, 'ttlMs'>): boolean {
  return a.family === b.family && a.proto === b.proto && a.fromPort === b.fromPort && a.toPort === b.toPort && sameBytes(a.from, b.from) && sameBytes(a.to, b.to);
}

export class ExpectationTable {
  private readonly bySlot = new Map<string, Expectation>();
  private readonly byControl = new Map<string, Set<string>>();

  constructor(private readonly now: () => number) {}

  get size(): number {
    return this.bySlot.size;
  }

  /** Adds (or renews) an expectation that lives ttlMs from now; a different one on the same slot is replaced. */
  put(r: ExpectationRecord): Expectation {
    const slot = slotOf(r.family, r.proto, r.to, r.toPort);
    this.drop(slot);
    const { ttlMs, ...rest } = r;
    const e: Expectation = { ...rest, expiresAt: this.now() + ttlMs };
    this.bySlot.set(slot, e);
    const ctl = controlId(r.control);
    let slots = this.byControl.get(ctl);
    if (!slots) this.byControl.set(ctl, (slots = new Set()));
    slots.add(slot);
    return e;
  }

  /** Removes the expectation equal to r (same tuple); true if there was one. */
  remove(r: Omit<ExpectationRecord, 'ttlMs'>): boolean {
    const slot = slotOf(r.family, r.proto, r.to, r.toPort);
    const e = this.bySlot.get(slot);
    if (!e || !sameExpectation(e, r)) return false;
    this.drop(slot);
    return true;
  }

  /** The live expectation a first packet fulfils, removed from the table; undefined if none. */
  take(t: FirstPacketTuple): Expectation | undefined {
    if (this.bySlot.size === 0) return undefined;
    const slot = slotOf(t.family, t.proto, t.dst, t.dport);
    const e = this.bySlot.get(slot);
    if (!e || !sameBytes(e.from, t.src) || (e.fromPort !== 0 && e.fromPort !== t.sport)) return undefined;
    this.drop(slot);
    return e.expiresAt > this.now() ? e : undefined;
  }

  /** Removes and returns the expectations of a control connection. */
  removeControl(control: ExpectationRecord['control']): Expectation[] {
    const slots = this.byControl.get(controlId(control));
    if (!slots) return [];
    const out: Expectation[] = [];
    for (const slot of [...slots]) {
      const e = this.bySlot.get(slot);
      if (e) out.push(e);
      this.drop(slot);
    }
    return out;
  }

  /** Removes and returns the expectations whose time is up. */
  expire(): Expectation[] {
    const now = this.now();
    const out: Expectation[] = [];
    for (const [slot, e] of this.bySlot) {
      if (e.expiresAt > now) continue;
      out.push(e);
      this.drop(slot);
    }
    return out;
  }

  /** The unexpired expectations, as sent to peers. */
  live(): ExpectationRecord[] {
    const now = this.now();
    const out: ExpectationRecord[] = [];
    for (const e of this.bySlot.values()) if (e.expiresAt > now) out.push(this.record(e));
    return out;
  }

  /** An expectation as sent to peers: the time it has left. */
  record(e: Expectation): ExpectationRecord {
    const { expiresAt, ...rest } = e;
    return { ...rest, ttlMs: Math.max(0, expiresAt - this.now()) };
  }

  private drop(slot: string): void {
    const e = this.bySlot.get(slot);
    if (!e) return;
    this.bySlot.delete(slot);
    const ctl = controlId(e.control);
    const slots = this.byControl.get(ctl);
    slots?.delete(slot);
    if (slots?.size === 0) this.byControl.delete(ctl);
  }
}
