// The controller's side of protocol helpers (the patent's "first software
// entity"): it hands each EV_HELPER punt to the flow's helper (helper.ts),
// creates the expectations the helper asks for, replicates them to every
// node and holds the packet (and its flow's later packets) until the peers
// acked them or the hold timeout passed (held-flows.ts). A first packet that
// fulfils an expectation is admitted as related, without a rule decision.
// Expectations go when used, expired or with their control connection.
//
// Nothing here knows FTP: a new helper is a ProtocolHelper in the registry.
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey, puntMeta } from '../bpf/codec.js';
import type { ExpectationRecord } from '../cluster/types.js';
import type { FlowEventListener, RemovalReason } from '../engine/flow-events.js';
import { FlowFlag } from '../gen/layout.js';
import type { Logger } from '../log.js';
import { formatAddress } from '../net/address.js';
import { ALONE, type ExpectationSync } from './expectation-sync.js';
import { ExpectationTable, type Expectation } from './expectations.js';
import { HeldFlows } from './held-flows.js';
import type { HelperRegistry } from './helper.js';
import { helperPacket, tcpPayload } from './helper-packet.js';
import { HelperStats } from './helper-stats.js';
import { LatencyHistogram } from '../stats/latency-histogram.js';

export interface HelperSettings {
  /** Longest hold of a command waiting for the peers' acks (config helpers.hold_timeout_ms). */
  holdTimeoutMs: number;
  /** An expectation unused this long is dropped. */
  expectationTtlMs: number;
}

export const DEFAULT_EXPECTATION_TTL_MS = 60_000;
/** Expired expectations are swept this often. */
const EXPIRY_INTERVAL_MS = 1000;
/** Frames held at once over all flows. */
const MAX_HELD_FRAMES = 4096;

export interface HelperRunnerDeps {
  /** The connection table: the punted flow's entry names its helper and originator. */
  lookupEntry(key: Uint8Array, value: Uint8Array): boolean;
  /** Re-injects through xdp_syncwall_release. */
  release(frame: Uint8Array, ifindex: number): void;
  /** Clears FLOW_F_HELD (held-flag.ts). */
  unhold(key: Uint8Array): void;
  registry: HelperRegistry;
  settings: HelperSettings;
  log: Logger;
  monotonicNs(): bigint;
  /** Milliseconds on a monotonic clock (expectation lifetimes). */
  nowMs(): number;
}

const keyHex = (buf: Uint8Array, off: number): string => Buffer.from(buf.buffer, buf.byteOffset + off, FLOW_KEY_SIZE).toString('hex');

export class HelperRunner implements FlowEventListener {
  readonly stats = new HelperStats();
  private readonly d: HelperRunnerDeps;
  private readonly expectations: ExpectationTable;
  private readonly histogram = new LatencyHistogram();
  private readonly held: HeldFlows;
  private readonly value = new Uint8Array(FLOW_ENTRY_SIZE);
  private sync: ExpectationSync | undefined;
  private expiry: NodeJS.Timeout | undefined;

  constructor(deps: HelperRunnerDeps) {
    this.d = deps;
    this.expectations = new ExpectationTable(deps.nowMs);
    this.held = new HeldFlows({
      release: deps.release,
      unhold: deps.unhold,
      stats: this.stats,
      log: deps.log,
      monotonicNs: deps.monotonicNs,
      histogram: this.histogram,
      maxFrames: MAX_HELD_FRAMES,
    });
  }

  /** Cluster member: expectations go to the peers and holds wait for their acks. */
  attachSync(sync: ExpectationSync): void {
    this.sync = sync;
  }

  start(): void {
    this.expiry = setInterval(() => this.expire(), EXPIRY_INTERVAL_MS);
    this.expiry.unref();
  }

  /** Stops the expiry sweep and releases whatever is held. */
  close(): void {
    clearInterval(this.expiry);
    this.held.releaseAll();
  }

  /** An EV_HELPER punt record (buf[off..] valid only during the call). */
  onPunt(buf: Uint8Array, off: number): void {
    this.stats.add('helper_punts');
    const keyOff = puntMeta.keyOffset(off);
    const key = buf.subarray(keyOff, keyOff + FLOW_KEY_SIZE);
    if (!this.d.lookupEntry(key, this.value)) {
      this.stats.add('helper_punts_no_entry');
      return;
    }
    const dataOff = puntMeta.dataOffset(off);
    const frame = buf.slice(dataOff, dataOff + puntMeta.capLen(buf, off));
    const acked = this.inspect(buf, keyOff, puntMeta.srcIsA(buf, off), tcpPayload(frame, puntMeta.l3Off(buf, off), puntMeta.l4Off(buf, off)));
    this.held.push(keyHex(buf, keyOff), key, frame, puntMeta.ifindex(buf, off), puntMeta.tsNs(buf, off), acked);
  }

  /**
   * First-packet pipeline: whether the punted first packet (key at
   * buf[keyOff], normalized) fulfils an expectation; if so the expectation
   * is used up (here and, through the peers, everywhere).
   */
  takeRelated(buf: Uint8Array, keyOff: number, srcIsA: boolean): boolean {
    if (this.expectations.size === 0) return false;
    const k = flowKey.read(buf, keyOff);
    const e = this.expectations.take(
      srcIsA
        ? { family: k.family, proto: k.proto, src: k.addrA, sport: k.portA, dst: k.addrB, dport: k.portB }
        : { family: k.family, proto: k.proto, src: k.addrB, sport: k.portB, dst: k.addrA, dport: k.portA },
    );
    if (!e) return false;
    this.stats.add('expectations_used');
    this.sync?.publish([], [this.expectations.record(e)]);
    this.d.log.info({ ...describe(e), sport: srcIsA ? k.portA : k.portB }, 'related connection admitted');
    return true;
  }

  /** FlowEventListener: a removed control connection takes its expectations along. */
  removed(key: Uint8Array, _reason: RemovalReason, _flags: number): void {
    if (this.expectations.size === 0) return;
    const gone = this.expectations.removeControl(flowKey.read(key, 0));
    if (gone.length === 0) return;
    this.stats.add('expectations_control_gone', gone.length);
    this.sync?.publish([], gone.map((e) => this.expectations.record(e)));
  }

  /** Expectations a peer created or removed. */
  onPeerExpectations(add: readonly ExpectationRecord[], remove: readonly ExpectationRecord[]): void {
    for (const r of add) this.expectations.put(r);
    this.stats.add('expectations_received', add.length);
    for (const r of remove) if (this.expectations.remove(r)) this.stats.add('expectations_removed_by_peer');
  }

  /** The live expectations (for a joining peer). */
  liveExpectations(): ExpectationRecord[] {
    return this.expectations.live();
  }

  /** Helper counters, the hold time quantiles and the helpers' own counters (for `syncwall stats`). */
  counters(): Record<string, bigint> {
    return {
      ...this.stats.snapshot(),
      helper_held_frames_now: BigInt(this.held.heldFrames),
      expectations_now: BigInt(this.expectations.size),
      ...this.histogram.counters('helper_hold'),
      ...this.d.registry.counters(),
    };
  }

  /** Runs the flow's helper on the packet; returns the wait the packet is held for, or null. */
  private inspect(buf: Uint8Array, keyOff: number, srcIsA: boolean, payload: Uint8Array): Promise<boolean> | null {
    const entry = flowEntry.decode(this.value, 0);
    const helper = this.d.registry.get(entry.helper);
    if (!helper) return null;
    const decision = helper.inspect(helperPacket(buf, keyOff, srcIsA, (entry.flags & FlowFlag.FLOW_F_ORIG_A) !== 0, payload));
    if (decision.expect.length === 0) return null;
    const control = flowKey.read(buf, keyOff);
    const records: ExpectationRecord[] = decision.expect.map((x) => ({
      family: control.family,
      proto: x.proto,
      from: x.from,
      fromPort: x.fromPort,
      to: x.to,
      toPort: x.toPort,
      helper: helper.id,
      control,
      ttlMs: this.d.settings.expectationTtlMs,
    }));
    for (const r of records) this.expectations.put(r);
    this.stats.add('expectations_created', records.length);
    const publication = this.sync?.publish(records, []) ?? ALONE;
    if (!decision.hold) return null;
    switch (publication.kind) {
      case 'alone':
        this.stats.add('helper_hold_skipped_single_node');
        return null;
      case 'sync-off':
        this.stats.add('helper_hold_skipped_sync_off');
        return null;
      case 'sent':
        return publication.acked(this.d.settings.holdTimeoutMs);
    }
  }

  private expire(): void {
    const gone = this.expectations.expire();
    if (gone.length === 0) return;
    this.stats.add('expectations_expired', gone.length);
    this.d.log.debug({ expired: gone.map(describe) }, 'expectations expired unused');
  }
}

function describe(e: Expectation): Record<string, unknown> {
  return {
    proto: e.proto,
    src: formatAddress(e.from),
    dst: formatAddress(e.to),
    dport: e.toPort,
    control: `${formatAddress(e.control.addrA)}:${e.control.portA} ${formatAddress(e.control.addrB)}:${e.control.portB}`,
  };
}
