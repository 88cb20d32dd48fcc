// Item 3: TCP bulk throughput through the firewall node with iperf3, one
// stream and eight. The lab's endpoints send with TX checksum offload off
// (test/lab/netns.ts needs full checksums for re-injected first packets),
// which also turns off TSO: every configuration forwards MTU-sized segments.
import type { Lab } from '../test/lab/netns.js';
import type { LabProcess } from '../test/lab/processes.js';
import { waitFor } from '../test/lab/poll.js';
import { SINGLE } from '../test/lab/topology.js';
import { BENCH_PORTS } from './lib/firewalls.js';

export class IperfError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IperfError';
  }
}

/** An iperf3 server in the server namespace, serving one test after another. */
export async function startIperfServer(lab: Lab): Promise<LabProcess> {
  const proc = lab.spawn('srv', ['iperf3', '--server', '--port', String(BENCH_PORTS.iperf)]);
  await waitFor(
    async () => {
      if (!proc.running) throw new IperfError(`iperf3 server exited: ${proc.stderr}`);
      return (await lab.exec('srv', ['ss', '-Htln', `sport = :${BENCH_PORTS.iperf}`])).stdout.trim() !== '';
    },
    { timeoutMs: 10_000, what: 'the iperf3 server to listen' },
  );
  return proc;
}

/** Bits/s the server received over `seconds` with `streams` parallel TCP streams. */
export async function tcpBulk(lab: Lab, streams: number, seconds: number): Promise<number> {
  const argv = ['iperf3', '--client', SINGLE.server.v4, '--port', String(BENCH_PORTS.iperf), '--time', String(seconds), '--parallel', String(streams), '--json'];
  const r = await lab.exec('cli', argv, { timeoutMs: (seconds + 20) * 1000 });
  let parsed: { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch (err) {
    throw new IperfError(`iperf3 gave no JSON (exit ${r.code}): ${r.stderr}`, { cause: err });
  }
  const bps = parsed.end?.sum_received?.bits_per_second;
  if (parsed.error || bps === undefined) throw new IperfError(`iperf3: ${parsed.error ?? 'no received sum'}`);
  return bps;
}
