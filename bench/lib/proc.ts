// What the benchmarks read about a process from /proc.
import { readFileSync } from 'node:fs';

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function residentBytes(pid: number): number {
  const path = `/proc/${pid}/status`;
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(path, 'utf8'));
  if (!m) throw new Error(`${path}: no VmRSS line`);
  return Number(m[1]) * 1024;
}
