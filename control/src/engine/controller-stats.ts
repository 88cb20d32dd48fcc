// Counters of the controller's own work, reported by `syncwall stats` next
// to the data plane's per-CPU counters.
export const CONTROLLER_COUNTERS = [
  'punts_received',
  'punts_accepted',
  'punts_dropped',
  'punts_rejected',
  'punts_stale',
  'punts_no_interface',
  'rejects_sent',
  'reinjected',
  'reinject_errors',
  'insert_errors',
  'table_full',
  'state_events',
  'expired',
  'deleted',
  'recheck_removed',
  'rule_reloads',
] as const;

export type ControllerCounter = (typeof CONTROLLER_COUNTERS)[number];

export class ControllerStats {
  private readonly values = new Float64Array(CONTROLLER_COUNTERS.length);
  private static readonly index = new Map<ControllerCounter, number>(CONTROLLER_COUNTERS.map((n, i) => [n, i]));

  add(name: ControllerCounter, n = 1): void {
    this.values[ControllerStats.index.get(name)!]! += n;
  }

  snapshot(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    CONTROLLER_COUNTERS.forEach((name, i) => (out[name] = BigInt(this.values[i]!)));
    return out;
  }
}
