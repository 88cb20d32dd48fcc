// The controller's feed of flow lifecycle events: state changes reported by
// the data plane (sw_event_ring) and removals the controller makes itself
// (expiry, flush, recheck). Logging and statistics subscribe today; cluster
// sync subscribes to the same feed.
import type { StateEvent } from '../bpf/codec.js';

export type RemovalReason = 'expired' | 'deleted' | 'recheck';

export interface FlowEventListener {
  stateChanged?(ev: StateEvent): void;
  /** key is a struct flow_key, valid only during the call; flags are the removed entry's (enum flow_flag). */
  removed?(key: Uint8Array, reason: RemovalReason, flags: number): void;
}

export class FlowEventFeed {
  private readonly listeners: FlowEventListener[] = [];

  subscribe(listener: FlowEventListener): void {
    this.listeners.push(listener);
  }

  stateChanged(ev: StateEvent): void {
    for (const l of this.listeners) l.stateChanged?.(ev);
  }

  removed(key: Uint8Array, reason: RemovalReason, flags: number): void {
    for (const l of this.listeners) l.removed?.(key, reason, flags);
  }
}
