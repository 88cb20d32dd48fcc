// Real clients and servers inside a lab: curl, ping, the node traffic agent
// (HTTP, UDP echo, verified TCP stream) and the client's TCP SNMP counters.
// Every client is bounded by a count and a timeout.
import { join } from 'node:path';
import type { Lab } from './netns.js';
import { REPO_ROOT } from './paths.js';
import { sleep, waitFor } from './poll.js';
import type { LabProcess, RunResult } from './processes.js';

const AGENT = join(REPO_ROOT, 'test/lab/agent.ts');
const AGENT_START_MS = 15_000;

function agentArgv(mode: string, args: readonly string[]): string[] {
  return ['node', '--import', 'tsx', AGENT, mode, ...args];
}

/** Address as it goes into a URL. */
export function urlHost(addr: string): string {
  return addr.includes(':') ? `[${addr}]` : addr;
}

/** HTTP servers on the given ports (v4 and v6), ready when this resolves. */
export async function startHttpServer(lab: Lab, host: string, ports: readonly number[]): Promise<LabProcess> {
  const proc = lab.spawn(host, agentArgv('http-server', ['--ports', ports.join(',')]));
  await proc.waitForJson((m) => m.event === 'listening', AGENT_START_MS, 'the HTTP server to listen');
  return proc;
}

/** Requests the HTTP server has logged for a port so far. */
export function httpRequests(server: LabProcess, port: number): Record<string, unknown>[] {
  return server.jsonLines().filter((m) => m.event === 'request' && m.port === port);
}

/** curl exit codes the tests tell apart. */
export const CURL_OK = 0;
export const CURL_CONNECTION_REFUSED = 7;
export const CURL_TIMEOUT = 28;

export interface CurlOptions {
  maxTimeS?: number;
  /** Source port, so the connection can be found in the table afterwards. */
  localPort?: number;
}

export function curl(lab: Lab, host: string, addr: string, port: number, opts: CurlOptions = {}): Promise<RunResult> {
  const maxTimeS = opts.maxTimeS ?? 5;
  // --noproxy: a proxy from the environment must never see lab traffic.
  const argv = ['curl', '-sS', '--noproxy', '*', '--max-time', String(maxTimeS)];
  if (opts.localPort !== undefined) argv.push('--local-port', String(opts.localPort));
  argv.push(`http://${urlHost(addr)}:${port}/`);
  return lab.exec(host, argv, { timeoutMs: (maxTimeS + 10) * 1000 });
}

export async function startUdpEcho(lab: Lab, host: string, port: number): Promise<LabProcess> {
  const proc = lab.spawn(host, agentArgv('udp-echo', ['--port', String(port)]));
  await proc.waitForJson((m) => m.event === 'listening', AGENT_START_MS, 'the UDP echo server to listen');
  return proc;
}

export interface UdpResult {
  sent: number;
  received: number;
}

/** Sends count datagrams one at a time, each waiting (bounded) for its echo. */
export async function udpRequest(lab: Lab, host: string, addr: string, port: number, count = 3): Promise<UdpResult> {
  const r = await lab.exec(host, agentArgv('udp-request', ['--host', addr, '--port', String(port), '--count', String(count), '--timeout-ms', '2000']), {
    timeoutMs: AGENT_START_MS + count * 2000,
  });
  const done = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event: string } & UdpResult)
    .find((m) => m.event === 'done');
  if (!done) throw new Error(`udp-request gave no result (exit ${r.code}): ${r.stderr}`);
  return { sent: done.sent, received: done.received };
}

export interface PingResult {
  code: number | null;
  transmitted: number;
  received: number;
  output: string;
}

export async function ping(lab: Lab, host: string, addr: string, opts: { count?: number; size?: number } = {}): Promise<PingResult> {
  const count = opts.count ?? 3;
  const argv = ['ping', addr.includes(':') ? '-6' : '-4', '-n', '-c', String(count), '-i', '0.2', '-W', '2'];
  if (opts.size !== undefined) argv.push('-s', String(opts.size));
  argv.push(addr);
  const r = await lab.exec(host, argv, { timeoutMs: (count * 2 + 10) * 1000 });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return {
    code: r.code,
    transmitted: Number(m?.[1] ?? 0),
    received: Number(m?.[2] ?? 0),
    output: r.stdout + r.stderr,
  };
}

/**
 * Raw IP packets of one protocol number (no ports): what the firewall does
 * with protocols it does not track by ports (GRE, ESP, ...). The receiver
 * prints each packet; markers in the payload identify them.
 */
export async function startRawReceiver(lab: Lab, host: string, family: 4 | 6, proto: number): Promise<LabProcess> {
  const proc = lab.spawn(host, ['socat', '-u', `IP${family}-RECV:${proto}`, 'STDOUT']);
  const bound = family === 4 ? `0.0.0.0:${proto}` : `*:${proto}`;
  await waitFor(
    async () => {
      if (!proc.running) throw new Error(`raw receiver exited: ${proc.stderr}`);
      return (await lab.exec(host, ['ss', '-Hwan'])).stdout.split('\n').some((l) => l.includes(` ${bound} `));
    },
    { timeoutMs: AGENT_START_MS, what: `a raw IPv${family} socket for protocol ${proto}` },
  );
  return proc;
}

export async function sendRaw(lab: Lab, host: string, addr: string, proto: number, payload: string): Promise<void> {
  const family = addr.includes(':') ? 6 : 4;
  await lab.execChecked(host, ['socat', '-u', 'STDIN', `IP${family}-SENDTO:${urlHost(addr)}:${proto}`], { input: `${payload}\n` });
}

export function rawReceived(receiver: LabProcess, marker: string): boolean {
  return receiver.stdoutLines.some((l) => l.includes(marker));
}

export interface TcpCounters {
  /** Connections this namespace opened (one first SYN each). */
  activeOpens: number;
  /** SYNs it had to send again. */
  synRetrans: number;
}

/** The namespace's own TCP SNMP counters (IPv4 and IPv6 share them). */
export async function tcpCounters(lab: Lab, host: string): Promise<TcpCounters> {
  // -a absolute values, -s leave nstat's history file alone, -z include zeros.
  const r = await lab.execChecked(host, ['nstat', '-asz', '--json', 'TcpActiveOpens', 'TcpExtTCPSynRetrans']);
  const parsed = JSON.parse(r.stdout) as { kernel: Record<string, number> };
  return {
    activeOpens: parsed.kernel.TcpActiveOpens ?? Number.NaN,
    synRetrans: parsed.kernel.TcpExtTCPSynRetrans ?? Number.NaN,
  };
}

export async function startStreamServer(lab: Lab, host: string, port: number): Promise<LabProcess> {
  const proc = lab.spawn(host, agentArgv('stream-server', ['--port', String(port)]));
  await proc.waitForJson((m) => m.event === 'listening', AGENT_START_MS, 'the stream server to listen');
  return proc;
}

export interface StreamOutcome {
  verified: number;
  /** Why the stream ended early (socket error, closed), or null. */
  failure: string | null;
  mismatches: number;
}

/**
 * A long-lived TCP stream whose client sends a deterministic byte sequence,
 * one chunk at a time, and verifies the server's echo of each chunk.
 */
export class VerifiedStream {
  private constructor(readonly proc: LabProcess) {}

  static async start(lab: Lab, host: string, addr: string, port: number, maxSeconds = 180, localPort?: number): Promise<VerifiedStream> {
    const args = ['--host', addr, '--port', String(port), '--max-seconds', String(maxSeconds), '--stall-ms', '2000'];
    if (localPort !== undefined) args.push('--local-port', String(localPort));
    const proc = lab.spawn(host, agentArgv('stream-client', args));
    await proc.waitForJson((m) => m.event === 'connected', AGENT_START_MS, 'the stream to connect');
    return new VerifiedStream(proc);
  }

  /** Bytes sent and verified in the echo so far (as last reported). */
  verified(): number {
    let latest = 0;
    for (const m of this.proc.jsonLines()) {
      if (typeof m.verified === 'number') latest = m.verified;
    }
    return latest;
  }

  /** Waits until at least `bytes` more than now have been verified. */
  async waitForProgress(bytes: number, timeoutMs: number): Promise<number> {
    const target = this.verified() + bytes;
    const hit = await this.proc.waitForJson((m) => typeof m.verified === 'number' && m.verified >= target, timeoutMs, `the stream to verify ${target} bytes`);
    return hit.verified as number;
  }

  /** Waits for the client to report that an echo is overdue. */
  async waitForStall(timeoutMs: number): Promise<number> {
    const hit = await this.proc.waitForJson((m) => m.event === 'stalled', timeoutMs, 'the stream to stall');
    return hit.verified as number;
  }

  stalls(): number {
    return this.proc.jsonLines().filter((m) => m.event === 'stalled').length;
  }

  /** Asks the client to stop and returns its final report. */
  async finish(timeoutMs = 10_000): Promise<StreamOutcome> {
    this.proc.write('stop\n');
    const done = await this.proc.waitForJson((m) => m.event === 'done' || m.event === 'mismatch', timeoutMs, 'the stream client to finish');
    return {
      verified: typeof done.verified === 'number' ? done.verified : this.verified(),
      failure: typeof done.failure === 'string' ? done.failure : null,
      mismatches: this.proc.jsonLines().filter((m) => m.event === 'mismatch').length,
    };
  }
}

export interface FleetConnection {
  localPort: number;
  /** No error and an echo within the agent's stall bound. */
  alive: boolean;
  verified: number;
  /** Largest time between two echoes since the start or the last resetGaps(), a stall in progress included. */
  maxGapMs: number;
  failure: string | null;
}

export interface FleetOptions {
  /** Bytes per ping-pong (default 64). */
  chunk?: number;
  /** Each connection sends its next chunk this often, once the last one came back (default 10). */
  intervalMs?: number;
  maxSeconds?: number;
}

/**
 * Many long-lived TCP connections from one client process (the agent's
 * stream-fleet), each with its own verified byte stream. Reports are asked
 * for on stdin and read from stdout with a cursor, so a long run does not
 * re-parse its whole output on every poll.
 */
export class StreamFleet {
  private seq = 0;
  private cursor = 0;

  private constructor(
    readonly proc: LabProcess,
    readonly count: number,
    /** Connections that failed to open. */
    readonly failedToConnect: number,
  ) {}

  static async start(lab: Lab, host: string, addr: string, port: number, count: number, opts: FleetOptions = {}): Promise<StreamFleet> {
    const proc = lab.spawn(host, agentArgv('stream-fleet', [
      '--host', addr, '--port', String(port), '--count', String(count),
      '--chunk', String(opts.chunk ?? 64), '--interval-ms', String(opts.intervalMs ?? 10),
      '--max-seconds', String(opts.maxSeconds ?? 600),
    ]));
    // Connections open ten at a time, each bounded by 10 s.
    const connected = await proc.waitForJson((m) => m.event === 'connected', AGENT_START_MS + count * 1000, `${count} connections to open`);
    return new StreamFleet(proc, count, connected.failed as number);
  }

  /** Every connection's state now. */
  async report(timeoutMs = 15_000): Promise<FleetConnection[]> {
    const seq = ++this.seq;
    this.proc.write(`report ${seq}\n`);
    const line = await this.nextLine((m) => m.event === 'report' && m.seq === seq, timeoutMs, `fleet report ${seq}`);
    return line.conns as FleetConnection[];
  }

  /** Starts every connection's largest gap over, so the next reports measure an event. */
  async resetGaps(timeoutMs = 15_000): Promise<void> {
    const seq = ++this.seq;
    this.proc.write(`reset ${seq}\n`);
    await this.nextLine((m) => m.event === 'reset' && m.seq === seq, timeoutMs, `fleet reset ${seq}`);
  }

  /**
   * Waits until every connection has verified more bytes than it had when
   * this was called; returns the last report. Throws with the failed
   * connections if any failed, else with the laggards if some never move.
   */
  async waitAllProgress(timeoutMs: number): Promise<FleetConnection[]> {
    const mark = progressMark(await this.report());
    const last = await this.settle(mark, timeoutMs, 250);
    const failed = last.filter((c) => c.failure !== null);
    if (failed.length > 0) throw new FleetError(`${failed.length} connections failed: ${JSON.stringify(failed.slice(0, 5))}`);
    const stuck = last.filter((c) => !movedSince(mark, c));
    if (stuck.length > 0) throw new FleetError(`${stuck.length} of ${this.count} connections made no progress within ${timeoutMs} ms: ${JSON.stringify(stuck.slice(0, 5))}`);
    return last;
  }

  /**
   * Polls every intervalMs until each connection has either verified more
   * bytes than at `mark` or failed, or until timeoutMs; returns the last
   * report either way (a connection still stuck at the end is in it as it
   * is), so a caller can count what survived instead of failing.
   */
  async settle(mark: ProgressMark, timeoutMs: number, intervalMs: number): Promise<FleetConnection[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = await this.report();
      if (last.every((c) => c.failure !== null || movedSince(mark, c)) || Date.now() >= deadline) return last;
      await sleep(intervalMs);
    }
  }

  /** Ends the fleet; its final report. */
  async stop(timeoutMs = 15_000): Promise<FleetConnection[]> {
    this.proc.write('stop\n');
    const line = await this.nextLine((m) => m.event === 'done', timeoutMs, 'the fleet to stop');
    return line.conns as FleetConnection[];
  }

  private nextLine(pred: (m: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    return waitFor(
      () => {
        const lines = this.proc.stdoutLines;
        for (; this.cursor < lines.length; this.cursor++) {
          const line = lines[this.cursor]!;
          if (!line.startsWith('{')) continue;
          const msg = JSON.parse(line) as Record<string, unknown>;
          if (pred(msg)) {
            this.cursor++;
            return msg;
          }
        }
        if (!this.proc.running) throw new FleetError(`the fleet exited (${JSON.stringify(this.proc.exit)}) before ${what}: ${this.proc.stderr}`);
        return undefined;
      },
      { timeoutMs, intervalMs: 20, what },
    );
  }
}

/** Bytes each connection (by local port) had verified at some moment. */
export type ProgressMark = ReadonlyMap<number, number>;

export function progressMark(conns: readonly FleetConnection[]): ProgressMark {
  return new Map(conns.map((c) => [c.localPort, c.verified]));
}

/** The connection verified more bytes than at the mark. */
export function movedSince(mark: ProgressMark, c: FleetConnection): boolean {
  return c.verified > (mark.get(c.localPort) ?? Number.POSITIVE_INFINITY);
}

export class FleetError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FleetError';
  }
}

/** Summary of a fleet report for logs and assertions. */
export function fleetSummary(conns: readonly FleetConnection[]): { alive: number; failed: number; maxGapMs: number; verified: number } {
  return {
    alive: conns.filter((c) => c.alive).length,
    failed: conns.filter((c) => c.failure !== null).length,
    maxGapMs: Math.max(0, ...conns.map((c) => c.maxGapMs)),
    verified: conns.reduce((sum, c) => sum + c.verified, 0),
  };
}
