// Summaries of repeated measurements: the median is the figure, the spread
// (max - min over the median) says how much the machine moved it.

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, as a fraction; 0 for a single repetition. */
  spread: number;
  reps: number[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(reps: readonly number[]): Summary {
  const m = median(reps);
  const min = Math.min(...reps);
  const max = Math.max(...reps);
  return { median: m, min, max, spread: m ? (max - min) / m : Number.NaN, reps: [...reps] };
}
