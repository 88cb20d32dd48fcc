// Item 4, the controller's own ceiling: first-packet decisions + inserts +
// re-injections per second with synthetic punts (bench/agents/controller-drain.ts),
// run in a lab namespace of its own, whose loopback the punts arrive on and
// the re-injected SYNs go back into. The rate is per second of wall time and
// per second of the process's CPU time (one core's worth).
import { createLab } from '../test/lab/netns.js';
import { REPO_ROOT } from '../test/lab/paths.js';
import type { Report } from './lib/report.js';

const AGENT = 'bench/agents/controller-drain.ts';
const HOST = 'ctl';

export class CeilingOutputError extends Error {
  constructor(output: string) {
    super(`${AGENT}: no JSON result in its output:\n${output}`);
    this.name = 'CeilingOutputError';
  }
}

interface DrainRun {
  punts: number;
  rounds: { perSec: number; cpuUsPerPunt: number }[];
}

/**
 * One namespace, one agent run per repetition. Quick: one measured round of
 * 10k punts; full: the better of two rounds of 50k (after the agent's warm-up
 * round), sizes that keep the part within 30 s and 2 min on a busy machine.
 */
export async function controllerCeiling(report: Report, opts: { quick: boolean; reps: number }): Promise<void> {
  const punts = opts.quick ? 10_000 : 50_000;
  const rounds = opts.quick ? 1 : 2;
  const lab = await createLab({ topology: { hosts: [{ name: HOST, role: 'endpoint' }], links: [] } });
  const onSigint = (): void => void lab.teardown().finally(() => process.exit(130));
  process.once('SIGINT', onSigint);
  const wall: number[] = [];
  const cpu: number[] = [];
  try {
    for (let i = 0; i < opts.reps; i++) {
      const r = await lab.execChecked(HOST, ['node', '--import', 'tsx', AGENT, '--json', '--punts', String(punts), '--rounds', String(rounds)], { cwd: REPO_ROOT, timeoutMs: 120_000 });
      let run: DrainRun;
      try {
        run = JSON.parse(r.stdout.trim().split('\n').pop()!);
      } catch {
        throw new CeilingOutputError(r.stdout + r.stderr);
      }
      // The better of the agent's rounds: the other one met more of the rest of the machine.
      wall.push(Math.max(...run.rounds.map((x) => x.perSec)));
      cpu.push(Math.min(...run.rounds.map((x) => x.cpuUsPerPunt)));
    }
  } finally {
    process.off('SIGINT', onSigint);
    await lab.teardown();
  }
  const s = '4 conn rate';
  const name = 'controller ceiling: punts decided + inserted + re-injected';
  const note = `${punts} synthetic SYN punts per round, real Engine on the real object (test-run loaded, not attached)`;
  report.add({ section: s, name, subject: 'per CPU second', unit: 'punts/s', better: 'higher', reps: cpu.map((us) => 1e6 / us), target: { op: '>=', value: 200_000, on: 'value' }, note });
  report.add({ section: s, name, subject: 'per wall second', unit: 'punts/s', better: 'higher', reps: wall, note });
  report.add({ section: s, name: 'controller CPU per punt', subject: 'syncwall', unit: 'µs', better: 'lower', reps: cpu });
}
