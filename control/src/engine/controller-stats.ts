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

/** A fixed set of named counters (doubles: exact up to 2^53). */
export class NamedCounters<N extends string> {
  private readonly names: readonly N[];
  private readonly values: Float64Array;
  private readonly index: Map<N, number>;

  constructor(names: readonly N[]) {
    this.names = names;
    this.values = new Float64Array(names.length);
    this.index = new Map(names.map((n, i) => [n, i]));
  }

  add(name: N, n = 1): void {
    this.values[this.index.get(name)!]! += n;
  }

  get(name: N): number {
    return this.values[this.index.get(name)!]!;
  }

  snapshot(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    this.names.forEach((name, i) => (out[name] = BigInt(this.values[i]!)));
    return out;
  }
}

export class ControllerStats extends NamedCounters<ControllerCounter> {
  constructor() {
    super(CONTROLLER_COUNTERS);
  }
}
