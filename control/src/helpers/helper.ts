// The protocol-helper interface: the patent's "second software entity". A
// helper sees the punted packets of the flows a rule gave it (the commands
// and replies that open related connections) and says which connections to
// expect and whether the packet must wait until the expectation reached the
// cluster. The controller (helper-runner.ts, the "first software entity")
// creates the expectations, replicates them and holds and releases the
// packets, so a new helper (TFTP, SIP, ...) is one more implementation of
// this interface and a registry entry, nothing in the engine.
import type { HelperId } from '../gen/layout.js';

/** A punted packet of a helper flow, in the flow's own terms. */
export interface HelperPacket {
  family: 4 | 6;
  /** The packet travels from the flow's originator (e.g. the FTP client) to its responder. */
  fromOriginator: boolean;
  /** Endpoint addresses (4 or 16 bytes) and ports of the flow. */
  originator: Uint8Array;
  originatorPort: number;
  responder: Uint8Array;
  responderPort: number;
  /** The transport payload (TCP data), possibly empty. */
  payload: Uint8Array;
}

/** A related connection to admit without a rule decision: from `from` (port `fromPort`, 0 any) to to:toPort. */
export interface ExpectedConnection {
  proto: number;
  from: Uint8Array;
  fromPort: number;
  to: Uint8Array;
  toPort: number;
}

export interface HelperDecision {
  expect: ExpectedConnection[];
  /**
   * The packet (and the flow's later packets) waits until the expectations
   * reached the peers that matter, or the hold timeout: the related
   * connection may reach another node before the packet's effect does.
   */
  hold: boolean;
}

export const NOTHING: HelperDecision = { expect: [], hold: false };

export interface ProtocolHelper {
  /** enum helper_id of the flows this helper serves. */
  readonly id: HelperId;
  readonly name: string;
  /** Inspects one punted packet of a served flow (any packet of it while the flow is held). */
  inspect(pkt: HelperPacket): HelperDecision;
  /** The helper's own counters (refusals by reason, ...), names prefixed with the helper's name. */
  counters(): Record<string, bigint>;
}

export class HelperRegistryError extends Error {
  override name = 'HelperRegistryError';
}

/** enum helper_id → helper. */
export class HelperRegistry {
  private readonly byId = new Map<number, ProtocolHelper>();

  constructor(helpers: readonly ProtocolHelper[]) {
    for (const h of helpers) {
      if (this.byId.has(h.id)) throw new HelperRegistryError(`two helpers for helper id ${h.id}: ${this.byId.get(h.id)!.name} and ${h.name}`);
      this.byId.set(h.id, h);
    }
  }

  get(id: number): ProtocolHelper | undefined {
    return this.byId.get(id);
  }

  counters(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    for (const h of this.byId.values()) Object.assign(out, h.counters());
    return out;
  }
}
