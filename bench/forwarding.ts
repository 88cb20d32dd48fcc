// Item 2: small-packet forwarding through the firewall node. trafgen
// (netsniff-ng) in the client namespace sends 64-byte UDP frames over many
// flows that were opened beforehand (bench/agents/udp-flows.ts, so the
// firewall has seen both directions); an XDP_DROP program on the server's
// veth is the sink, and its XDP drop counter is what arrived. The harness
// ceiling is the same generator into an XDP_DROP on the firewall's ingress
// veth: no firewall can forward more than that.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../test/lab/netns.js';
import type { LabProcess } from '../test/lab/processes.js';
import { REPO_ROOT } from '../test/lab/paths.js';
import { sleep, waitFor } from '../test/lab/poll.js';
import { SINGLE } from '../test/lab/topology.js';
import { BENCH_PORTS } from './lib/firewalls.js';

const XDP_DROP_OBJ = join(REPO_ROOT, 'build/xdp_drop.bpf.o');
const UDP_FLOWS_AGENT = join(REPO_ROOT, 'bench/agents/udp-flows.ts');
/** Source ports of the generated flows: below the ephemeral range, so no socket of the lab collides. */
const FIRST_PORT = 20_000;
/** Frame without FCS: 14 Ethernet + 20 IPv4 + 8 UDP + 18 payload = 60 bytes, 64 on a wire. */
const PAYLOAD_BYTES = 18;
/** A second bound on the generator, besides timeout(1). */
const GENERATOR_CAP = 100_000_000;
/** Time for the generator to start and the path to settle before counting. */
const RAMP_MS = 300;
/**
 * timeout(1)'s bound on the generator beyond the counting window. The run is
 * normally ended by a signal once the window is counted; the bound only
 * matters if this process dies. Generous, because reading the counters can
 * take seconds on a loaded machine.
 */
const STOP_MARGIN_MS = 30_000;

export class ForwardingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ForwardingError';
  }
}

/** Devices of the single-firewall lab the benchmark uses. */
function devices(lab: Lab): { cli: string; fwOut: string; fwIn: string; srv: string } {
  return { cli: `${lab.prefix}-cli`, fwOut: `${lab.prefix}-out`, fwIn: `${lab.prefix}-in`, srv: `${lab.prefix}-srv` };
}

export async function mac(lab: Lab, host: string, dev: string): Promise<string> {
  const r = await lab.execChecked(host, ['ip', '-j', 'link', 'show', 'dev', dev]);
  const address = (JSON.parse(r.stdout) as { address?: string }[])[0]?.address;
  if (!address) throw new ForwardingError(`no MAC address on ${dev}`);
  return address;
}

export interface ForwardingLab {
  /** trafgen configuration: the flows' frames, addressed to the firewall. */
  trafgenConf: string;
  flows: number;
}

/**
 * Makes the lab fit for packet blasts. The firewall's neighbours are made
 * permanent: the sink's XDP_DROP also drops ARP, and a neighbour lookup that
 * fails would drop the forwarded frames instead of measuring them.
 */
export async function prepareForwarding(lab: Lab, flows: number): Promise<ForwardingLab> {
  const d = devices(lab);
  const [cliMac, fwOutMac, srvMac] = await Promise.all([mac(lab, 'cli', d.cli), mac(lab, 'fw', d.fwOut), mac(lab, 'srv', d.srv)]);
  await lab.execChecked('fw', ['ip', 'neigh', 'replace', SINGLE.server.v4, 'lladdr', srvMac, 'dev', d.fwIn, 'nud', 'permanent']);
  await lab.execChecked('fw', ['ip', 'neigh', 'replace', SINGLE.client.v4, 'lladdr', cliMac, 'dev', d.fwOut, 'nud', 'permanent']);
  const trafgenConf = join(lab.tmpDir, 'flows.trafgen');
  writeFileSync(
    trafgenConf,
    `{ eth(da=${fwOutMac}, sa=${cliMac}), ipv4(saddr=${SINGLE.client.v4}, daddr=${SINGLE.server.v4}, ttl=64), ` +
      `udp(sp=dinc(${FIRST_PORT}, ${FIRST_PORT + flows - 1}, 1), dp=${BENCH_PORTS.udp}), fill(0x00, ${PAYLOAD_BYTES}) }\n`,
  );
  return { trafgenConf, flows };
}

/** Opens every generated flow through the firewall: one datagram each way. Needs the UDP echo server running. */
export async function openUdpFlows(lab: Lab, fl: ForwardingLab): Promise<void> {
  const r = await lab.execChecked(
    'cli',
    ['node', '--import', 'tsx', UDP_FLOWS_AGENT, '--host', SINGLE.server.v4, '--port', String(BENCH_PORTS.udp), '--first-port', String(FIRST_PORT), '--count', String(fl.flows), '--timeout-ms', '5000'],
    { timeoutMs: 30_000 },
  );
  const done = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { answered?: number };
  if (done.answered !== fl.flows) throw new ForwardingError(`only ${done.answered ?? 0} of ${fl.flows} UDP flows were answered through the firewall`);
}

export async function attachDrop(lab: Lab, host: string, dev: string): Promise<void> {
  await lab.execChecked(host, ['ip', 'link', 'set', 'dev', dev, 'xdpdrv', 'obj', XDP_DROP_OBJ, 'sec', 'xdp']);
}

export async function detachDrop(lab: Lab, host: string, dev: string): Promise<void> {
  await lab.execChecked(host, ['ip', 'link', 'set', 'dev', dev, 'xdpdrv', 'off']);
}

/** Frames an XDP program dropped on a veth so far (all receive queues). */
async function xdpDrops(lab: Lab, host: string, dev: string): Promise<number> {
  const r = await lab.execChecked(host, ['ethtool', '-S', dev]);
  let total = 0;
  for (const m of r.stdout.matchAll(/rx_queue_\d+_xdp_drops:\s*(\d+)/g)) total += Number(m[1]);
  return total;
}

/**
 * Starts trafgen sending a configuration's frames out of a host's device,
 * bounded by timeout(1) at boundMs and by a frame count. trafgen forks one
 * worker per CPU up to `cpus`, pinned to CPUs 0, 1, ...: by default one
 * worker on CPU 0; a configuration may name its CPU (`cpu(1): { ... }`).
 * trafgen forks a worker per CPU and only exits cleanly when the worker gets
 * the signal too: signalled alone, the parent leaves a worker spinning in
 * the kernel for minutes. timeout(1) relays our SIGINT to its whole process
 * group (stopTrafgen), and bounds the run should this process die.
 */
export function startTrafgen(lab: Lab, host: string, dev: string, conf: string, boundMs: number, cpus = 1): LabProcess {
  // --no-sock-mem and --notouch-irq: trafgen would otherwise retune the
  // machine's socket buffer sysctls and IRQ affinities, which are not the lab's.
  return lab.spawn(host, [
    'timeout', '--signal', 'INT', '--kill-after', '5', String(boundMs / 1000),
    'trafgen', '--dev', dev, '--conf', conf, '--cpus', String(cpus), '--num', String(GENERATOR_CAP), '--no-sock-mem', '--notouch-irq',
  ]);
}

/** Stops a generator from startTrafgen and waits until it is gone. */
export async function stopTrafgen(gen: LabProcess, boundMs: number): Promise<void> {
  if (gen.running) gen.signal('SIGINT');
  await waitFor(() => !gen.running, { timeoutMs: boundMs + 10_000, what: 'trafgen to stop' });
}

/** A generator window in which trafgen exited: what it said. */
export class GeneratorDied {
  constructor(readonly why: string) {}
}

/** Why a startTrafgen process is gone, for GeneratorDied. */
export function generatorDied(gen: LabProcess, when: string): GeneratorDied {
  return new GeneratorDied(`trafgen exited ${when} (${JSON.stringify(gen.exit)}): ${gen.stderr.trim()}`);
}

/**
 * trafgen exits when a flush of its TX ring fails with EAGAIN: frames the
 * receiving veth holds while its peer's ring is full keep the socket's send
 * buffer used up (seen while the kernel was freeing a million entries of
 * the previous part, and under the SYN flood). That is the generator
 * failing, not the path measured: such a window is measured again, up to
 * this many times in all.
 */
const GENERATOR_ATTEMPTS = 3;

export async function retryGeneratorWindow<T>(what: string, once: () => Promise<T | GeneratorDied>): Promise<T> {
  const failures: string[] = [];
  for (let attempt = 1; attempt <= GENERATOR_ATTEMPTS; attempt++) {
    const result = await once();
    if (!(result instanceof GeneratorDied)) return result;
    failures.push(result.why);
  }
  throw new ForwardingError(`${what}: trafgen failed in all ${GENERATOR_ATTEMPTS} attempts: ${failures.join('; ')}`);
}

/**
 * Runs the generator for durationMs (after a ramp) and returns the rate at
 * which frames reached the counted XDP_DROP.
 */
function blast(lab: Lab, fl: ForwardingLab, counted: { host: string; dev: string }, durationMs: number): Promise<number> {
  return retryGeneratorWindow(`frames into ${counted.host}/${counted.dev}`, () => blastOnce(lab, fl, counted, durationMs));
}

async function blastOnce(lab: Lab, fl: ForwardingLab, counted: { host: string; dev: string }, durationMs: number): Promise<number | GeneratorDied> {
  const boundMs = RAMP_MS + durationMs + STOP_MARGIN_MS;
  const gen = startTrafgen(lab, 'cli', devices(lab).cli, fl.trafgenConf, boundMs);
  try {
    await sleep(RAMP_MS);
    if (!gen.running) return generatorDied(gen, 'during the ramp');
    const t0 = process.hrtime.bigint();
    const before = await xdpDrops(lab, counted.host, counted.dev);
    await sleep(durationMs);
    const after = await xdpDrops(lab, counted.host, counted.dev);
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    if (!gen.running) return generatorDied(gen, 'before the counting window ended');
    return (after - before) / elapsed;
  } finally {
    await stopTrafgen(gen, boundMs);
  }
}

/** Packets/s the firewall forwards from the client to the server over the opened flows. */
export async function forwardedPps(lab: Lab, fl: ForwardingLab, durationMs: number): Promise<number> {
  const { srv } = devices(lab);
  await attachDrop(lab, 'srv', srv);
  try {
    return await blast(lab, fl, { host: 'srv', dev: srv }, durationMs);
  } finally {
    await detachDrop(lab, 'srv', srv);
  }
}

/** The harness ceiling: packets/s the generator gets into the firewall's ingress veth. Run with no firewall attached. */
export async function ceilingPps(lab: Lab, fl: ForwardingLab, durationMs: number): Promise<number> {
  const { fwOut } = devices(lab);
  await attachDrop(lab, 'fw', fwOut);
  try {
    return await blast(lab, fl, { host: 'fw', dev: fwOut }, durationMs);
  } finally {
    await detachDrop(lab, 'fw', fwOut);
  }
}
