// Real clients and servers inside a lab: curl, ping, the node traffic agent
// (HTTP, UDP echo, verified TCP stream) and the client's TCP SNMP counters.
// Every client is bounded by a count and a timeout.
import { join } from 'node:path';
import type { Lab } from './netns.js';
import { REPO_ROOT } from './paths.js';
import { waitFor } from './poll.js';
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

  static async start(lab: Lab, host: string, addr: string, port: number, maxSeconds = 180): Promise<VerifiedStream> {
    const proc = lab.spawn(host, agentArgv('stream-client', ['--host', addr, '--port', String(port), '--max-seconds', String(maxSeconds), '--stall-ms', '2000']));
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
