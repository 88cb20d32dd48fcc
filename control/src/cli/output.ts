// How the CLI prints: aligned tables for people, JSON for scripts, and
// errors as `syncwall: ...` lines on stderr.

export interface Column {
  header: string;
  /** Numbers read better right-aligned. */
  align?: 'left' | 'right';
}

/** Pads every column to its widest cell; two spaces between columns. Without headers it is a key/value list. */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[], { headers = true } = {}): string {
  const all = headers ? [columns.map((c) => c.header), ...rows] : rows;
  // reduce, not Math.max(...): a full table has more rows than a call has arguments.
  const widths = columns.map((_c, i) => all.reduce((width, cells) => Math.max(width, (cells[i] ?? '').length), 0));
  const line = (cells: readonly string[]): string =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? '';
        const width = widths[i] ?? 0;
        return c.align === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return all.map((cells) => `${line(cells)}\n`).join('');
}

/**
 * JSON for scripts. 64-bit counters become JSON numbers while they are exact
 * (up to 2^53-1) and decimal strings beyond, so `jq` never sees a rounded value.
 */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? jsonBigint(v) : v), indent);
}

function jsonBigint(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** `1 rule`, `2 rules`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Milliseconds as a short human duration: 950ms, 42s, 3m05s, 2h07m, 4d03h. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

/** Writes to stdout, waiting when the pipe is full (large listings into `head`, `jq`). */
export async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

/**
 * Prints an error on stderr as `syncwall: <first line>`; further lines (one
 * problem each, `file:line: field: message`) follow unprefixed so editors and
 * grep can use them as they are.
 */
export function printError(message: string): void {
  const [first = '', ...rest] = message.split('\n');
  process.stderr.write(`syncwall: ${first}\n${rest.map((l) => `${l}\n`).join('')}`);
}
