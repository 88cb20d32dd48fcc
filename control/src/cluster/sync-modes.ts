// The sync mode in force per state class, switchable at run time
// (`syncwall sync mode CLASS MODE`). On-demand sends every state change at
// once; periodic only the differential pass; combined both; off nothing.
import type { StateClass, SyncMode } from './types.js';

export class SyncModes {
  private readonly modes: Record<StateClass, SyncMode>;

  constructor(initial: Record<StateClass, SyncMode>) {
    this.modes = { ...initial };
  }

  get(cls: StateClass): SyncMode {
    return this.modes[cls];
  }

  /** Sets a class's mode; returns the mode it replaces. */
  set(cls: StateClass, mode: SyncMode): SyncMode {
    const previous = this.modes[cls];
    this.modes[cls] = mode;
    return previous;
  }

  onDemand(cls: StateClass): boolean {
    const m = this.modes[cls];
    return m === 'on-demand' || m === 'combined';
  }

  periodic(cls: StateClass): boolean {
    const m = this.modes[cls];
    return m === 'periodic' || m === 'combined';
  }

  /** Anything is sent for the class (re-replication and removals follow this). */
  enabled(cls: StateClass): boolean {
    return this.modes[cls] !== 'off';
  }
}
