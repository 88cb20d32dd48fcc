// A benchmark part's lab: built, used and always removed, also when the run
// is interrupted (SIGINT) or the part fails, which then prints the daemons'
// logs first.
import { createLab, type Lab } from '../../test/lab/netns.js';
import type { Topology } from '../../test/lab/topology.js';

/** What a part builds and must remove again: a Lab, or a ClusterLab. */
export interface RemovableLab {
  teardown(): Promise<void>;
  diagnostics(): string;
}

/** Runs fn with a lab that is already built; removes it afterwards, whatever happens. */
export async function withLab<L extends RemovableLab, T>(lab: L, log: (line: string) => void, fn: (lab: L) => Promise<T>): Promise<T> {
  const onSigint = (): void => void lab.teardown().finally(() => process.exit(130));
  process.once('SIGINT', onSigint);
  try {
    return await fn(lab);
  } catch (err) {
    log(lab.diagnostics());
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    await lab.teardown();
  }
}

export async function inLab<T>(topology: Topology, log: (line: string) => void, fn: (lab: Lab) => Promise<T>): Promise<T> {
  return withLab(await createLab({ topology }), log, fn);
}
