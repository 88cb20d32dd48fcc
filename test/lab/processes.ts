// Running commands for the lab: one-shot commands with a timeout, and
// long-lived processes that are tracked so a teardown can end every one of
// them (by its own pid, never by name).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { waitFor } from './poll.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command was killed because it outlived its timeout. */
  timedOut: boolean;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  cwd?: string;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
    options?: { cause?: unknown },
  ) {
    const how = result.timedOut ? 'timed out' : `exited with ${result.code ?? result.signal}`;
    super(`${argv.join(' ')} ${how}: ${result.stderr.trim() || result.stdout.trim()}`, options);
    this.name = 'CommandError';
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Runs argv to completion (or kills it at the timeout); never throws for a non-zero exit. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('run: empty argv');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on('error', () => {
      // The command may exit without reading its input; that is its business.
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run(), but throws CommandError unless the command exits 0. */
export async function runChecked(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await run(argv, opts);
  if (result.code !== 0) throw new CommandError(argv, result);
  return result;
}

export interface SpawnOptions {
  cwd?: string;
  /** Also append the process's stdout and stderr to this file. */
  logFile?: string;
}

/** A long-lived process; its output is collected line by line. */
export class LabProcess {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly lines: string[] = [];
  private stderrText = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly argv: readonly string[],
    private readonly child: ChildProcess,
    logFile?: string,
  ) {
    if (child.pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
    this.pid = child.pid;
    const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
    let partial = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      log?.write(d);
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      log?.write(d);
      this.stderrText += d;
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        if (partial) this.lines.push(partial);
        this.exitInfo = { code, signal };
        log?.end();
        resolve(this.exitInfo);
      });
    });
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exitInfo;
  }

  get stdoutLines(): readonly string[] {
    return this.lines;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** stdout lines that parse as JSON objects (the agents' report format). */
  jsonLines(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.lines) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // A line that merely starts with a brace is not a report.
      }
    }
    return out;
  }

  /** Waits for the first JSON line matching pred; fails early if the process exits. */
  async waitForJson(
    pred: (msg: Record<string, unknown>) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<Record<string, unknown>> {
    return waitFor(
      () => {
        const hit = this.jsonLines().find(pred);
        if (hit) return hit;
        if (!this.running) {
          throw new Error(`${this.argv.join(' ')} exited (${JSON.stringify(this.exitInfo)}) before ${what}: ${this.stderrText}`);
        }
        return undefined;
      },
      { timeoutMs, what },
    );
  }

  write(text: string): void {
    this.child.stdin?.write(text);
  }

  endInput(): void {
    this.child.stdin?.end();
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL if the process is still there after graceMs. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([this.exited, timer])) === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Starts and remembers long-lived processes so stopAll() can end them. */
export class ProcessTracker {
  private readonly procs = new Set<LabProcess>();

  spawn(argv: readonly string[], opts: SpawnOptions = {}): LabProcess {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('spawn: empty argv');
    const child = spawn(file, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    // A failed spawn shows as a missing pid (LabProcess throws); a write to a
    // process that already exited is not an error for the lab.
    child.on('error', () => {});
    child.stdin.on('error', () => {});
    const proc = new LabProcess(argv, child, opts.logFile);
    this.procs.add(proc);
    void proc.exited.then(() => this.procs.delete(proc));
    return proc;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.stop()));
  }
}
