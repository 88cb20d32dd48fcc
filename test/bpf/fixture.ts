// Fixture checking for the packet tests: run one frame, compare the verdict
// and the exact counter deltas, and on failure show the packet as hex and in
// words.
import { AssertionError } from 'node:assert';
import { describeFrame, hexDump } from '../../control/src/net/describe.js';
import { VERDICT_NAMES, type CounterName, type RunResult, type TestDataplane } from './harness.js';

export interface Expectation {
  verdict: number;
  /** Counter deltas other than CNT_RX (always 1); every counter that moves must be listed. */
  counters: Partial<Record<CounterName, number>>;
}

export interface Fixture extends Expectation {
  description: string;
  frame: Uint8Array;
  ifindex?: number;
}

function verdictName(v: number): string {
  return VERDICT_NAMES[v] ?? `verdict ${v}`;
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(after)) {
    const d = value - (before[name] ?? 0);
    if (d !== 0) out[name] = d;
  }
  return out;
}

/** The packet in words and hex, for failure messages. */
export function showPacket(frame: Uint8Array): string {
  return `  packet: ${describeFrame(frame)}\n${hexDump(frame).replace(/^/gm, '    ')}`;
}

/** Runs the fixture's frame and throws an AssertionError naming every mismatch. */
export function check(dp: TestDataplane, f: Fixture): RunResult {
  const before = dp.counters();
  const result = dp.run(f.frame, f.ifindex);
  const moved = delta(before, dp.counters());
  const expected: Record<string, number> = { CNT_RX: 1, ...f.counters };
  const problems: string[] = [];
  if (result.verdict !== f.verdict) problems.push(`verdict ${verdictName(result.verdict)}, expected ${verdictName(f.verdict)}`);
  const names = new Set([...Object.keys(moved), ...Object.keys(expected)]);
  for (const name of names) {
    if ((moved[name] ?? 0) !== (expected[name] ?? 0))
      problems.push(`${name} moved by ${moved[name] ?? 0}, expected ${expected[name] ?? 0}`);
  }
  if (problems.length > 0) {
    throw new AssertionError({
      message: `${f.description}: ${problems.join('; ')}\n${showPacket(f.frame)}\n  counter deltas: ${JSON.stringify(moved)}`,
    });
  }
  return result;
}
