// Counters of the cluster logic, reported by `syncwall stats` (scope
// cluster) next to the transport's own counters.
import { NamedCounters } from '../engine/controller-stats.js';

export const CLUSTER_COUNTERS = [
  'entries_sent_node_on_demand',
  'entries_sent_node_periodic',
  'entries_sent_common_on_demand',
  'entries_sent_common_periodic',
  'entries_rereplicated',
  'removes_sent',
  'entries_received',
  'removes_received',
  'replicas_installed',
  'replicas_pruned',
  'replicas_ignored',
  'replicas_removed',
  'periodic_passes',
  'ownership_changes',
  'requests_served',
  'bulk_entries_sent',
  'bulk_entries_received',
  'join_requests_sent',
  'join_timeouts',
  'join_incomplete',
  'join_expectations_sent',
  'lease_lapses',
  'handovers_sent',
  'handovers_received',
  'fetch_requests',
  'fetch_ok',
  'fetch_not_found',
  'fetch_timeout',
  'fetch_held_full',
  'fetch_frames_reinjected',
  'fetch_frames_dropped',
] as const;

export type ClusterCounter = (typeof CLUSTER_COUNTERS)[number];

export class ClusterStats extends NamedCounters<ClusterCounter> {
  constructor() {
    super(CLUSTER_COUNTERS);
  }
}
