// Counters of the helper path (punted helper packets, holds, expectations),
// reported by `syncwall stats` with the controller's counters.
import { NamedCounters } from '../engine/controller-stats.js';

export const HELPER_COUNTERS = [
  /** EV_HELPER punts received */
  'helper_punts',
  /** ... whose flow was gone by then (the packet is dropped) */
  'helper_punts_no_entry',
  /** commands held until their expectations were acked or timed out */
  'helper_held',
  /** packets of a held flow queued behind its command */
  'helper_held_behind',
  'helper_released_on_ack',
  'helper_released_on_timeout',
  /** no hold: the cluster's common-state sync is off */
  'helper_hold_skipped_sync_off',
  /** no hold: a single node, or no live peer */
  'helper_hold_skipped_single_node',
  /** packets dropped because too many were held */
  'helper_held_full',
  'helper_released',
  'helper_release_errors',
  'expectations_created',
  'expectations_received',
  /** first packets admitted as related through an expectation */
  'expectations_used',
  'expectations_expired',
  /** removed with their control connection */
  'expectations_control_gone',
  'expectations_removed_by_peer',
] as const;

export type HelperCounter = (typeof HELPER_COUNTERS)[number];

export class HelperStats extends NamedCounters<HelperCounter> {
  constructor() {
    super(HELPER_COUNTERS);
  }
}
