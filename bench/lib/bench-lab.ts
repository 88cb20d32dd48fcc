// A benchmark part's lab: built, used and always removed, also when the run
// is interrupted (SIGINT) or the part fails, which then prints the daemons'
// logs first.
import { createLab, type Lab } from '../../test/lab/netns.js';
import type { Topology } from '../../test/lab/topology.js';

export async function inLab<T>(topology: Topology, log: (line: string) => void, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab({ topology });
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
