// The benchmark report: every figure with its repetitions, its ratio to the
// peer measured in the same run and the target it is held to; printed as one
// table and written as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { median, type Summary, summarize } from './stats.js';

export interface Target {
  /** The ratio (or, with on: 'value', the median) must be at least (>=) or at most (<=) this value. */
  op: '>=' | '<=';
  value: number;
  on?: 'ratio' | 'value';
}

export interface Figure {
  /** Issue item the figure belongs to, e.g. "1 xdp cost". */
  section: string;
  /** What was measured, e.g. "established TCP hit, 1k entries". */
  name: string;
  /** Configuration or subject: "syncwall", "nftables+ct", "reference", ... */
  subject: string;
  unit: string;
  /** Higher is better (rates) or lower is better (costs, latencies). */
  better: 'higher' | 'lower';
  value: Summary;
  /** The peer this figure is compared with: same section, this subject, and peerName or else the same name. */
  peer?: string;
  peerName?: string;
  /** Median of the per-repetition ratios to the peer (see resolveRatios). */
  ratio?: number;
  ratioReps?: number[];
  target?: Target;
  /** A difference that may legitimately be zero or negative. */
  signed?: boolean;
  /** Anything a reader needs to interpret the figure. */
  note?: string;
}

export interface Problem {
  section: string;
  message: string;
}

export class Report {
  readonly figures: Figure[] = [];
  readonly problems: Problem[] = [];
  readonly started = new Date();

  constructor(readonly meta: Record<string, unknown>) {}

  add(fig: Omit<Figure, 'value' | 'ratio'> & { reps: readonly number[] }): Figure {
    const { reps, ...rest } = fig;
    const figure: Figure = { ...rest, value: summarize(reps) };
    this.figures.push(figure);
    return figure;
  }

  /** A measurement that could not be made: reported in the table, not hidden. */
  problem(section: string, err: unknown): void {
    const message = err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
    this.problems.push({ section, message: message.split('\n')[0]!.slice(0, 300) });
  }

  /**
   * Ratios against each figure's peer, once all figures are in. Where both
   * have one value per repetition, the ratio is the median of the
   * per-repetition ratios: the two were measured close together, so load
   * that moves both cancels out. Otherwise it is the ratio of the medians.
   */
  resolveRatios(): void {
    for (const f of this.figures) {
      if (!f.peer) continue;
      const peer = this.figures.find((p) => p.section === f.section && p.name === (f.peerName ?? f.name) && p.subject === f.peer);
      if (!peer) continue;
      if (peer.value.reps.length === f.value.reps.length && f.value.reps.length > 1) {
        f.ratioReps = f.value.reps.map((v, i) => v / peer.value.reps[i]!);
        f.ratio = median(f.ratioReps);
      } else if (peer.value.median) {
        f.ratio = f.value.median / peer.value.median;
      }
    }
  }

  /** Figures that are missing, zero or not finite: what the smoke test checks. */
  invalid(): Figure[] {
    return this.figures.filter((f) => !Number.isFinite(f.value.median) || (!f.signed && f.value.median <= 0));
  }

  table(): string {
    const rows: string[][] = [['item', 'measurement', 'subject', 'median', 'unit', 'spread', 'reps', 'ratio', 'vs', 'target', 'met']];
    for (const f of this.figures) {
      const met = verdict(f);
      rows.push([
        f.section,
        f.name,
        f.subject,
        formatNumber(f.value.median),
        f.unit,
        f.value.reps.length > 1 ? `±${(f.value.spread * 50).toFixed(0)}%` : '-',
        String(f.value.reps.length),
        f.ratio === undefined ? '' : `${f.ratio.toFixed(2)}×`,
        f.peer === undefined ? '' : f.peerName ? `${f.peer} (${f.peerName})` : f.peer,
        f.target ? `${f.target.op} ${f.target.value}${f.target.on === 'value' ? ` ${f.unit}` : '×'}` : '',
        met,
      ]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    const numeric = new Set([3, 5, 6, 7]);
    const lines = rows.map((r) => r.map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd());
    lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
    for (const p of this.problems) lines.push(`NOT MEASURED  ${p.section}: ${p.message}`);
    return lines.join('\n');
  }

  write(path: string): void {
    mkdirSync(dirname(path), { recursive: true });
    const body = { meta: { ...this.meta, started: this.started.toISOString(), finished: new Date().toISOString() }, figures: this.figures, problems: this.problems };
    writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
  }
}

/** 'yes' or 'NO' for a figure with a target, '' without one (or without the ratio it needs). */
export function verdict(f: Figure): '' | 'yes' | 'NO' {
  if (!f.target) return '';
  const x = f.target.on === 'value' ? f.value.median : f.ratio;
  if (x === undefined || !Number.isFinite(x)) return '';
  return (f.target.op === '>=' ? x >= f.target.value : x <= f.target.value) ? 'yes' : 'NO';
}

/** Three significant digits with k/M suffixes: rates and costs of any size read alike. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toPrecision(3)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toPrecision(3)}k`;
  if (abs >= 100) return String(Math.round(n));
  return n.toPrecision(3);
}
