// Items 2, 3 and 4 (single node) on one client — firewall — server lab:
// every repetition measures the harness ceiling, then each firewall
// configuration in turn (plain, nftables+ct, syncwall), so drift on a
// shared machine touches all of them alike. Ratios are taken between
// configurations measured in the same run.
import type { Lab } from '../test/lab/netns.js';
import { SINGLE, singleFirewall } from '../test/lab/topology.js';
import { startUdpEcho } from '../test/lab/traffic.js';
import { type ConnLoad, connRun, prepareConnClient, startConnServer } from './conn-rate.js';
import { ceilingPps, forwardedPps, openUdpFlows, prepareForwarding } from './forwarding.js';
import { inLab } from './lib/bench-lab.js';
import { BENCH_PORTS, firewalls, type FirewallName } from './lib/firewalls.js';
import type { Report } from './lib/report.js';
import { startIperfServer, tcpBulk } from './tcp-bulk.js';

export interface LabPlan {
  reps: number;
  /** Generated UDP flows for the forwarding test. */
  flows: number;
  /** Counting window of one forwarding measurement. */
  ppsMs: number;
  bulkSeconds: number;
  /** One connection-rate measurement (a fixed time: slow and fast configurations see the machine's load for equally long). */
  connRate: Required<ConnLoad>;
  /** Connections, one at a time, for the connect-time percentiles. */
  latencyConns: number;
}

type Metric = 'pps' | 'bulk1' | 'bulk8' | 'connRate' | 'connectP50' | 'connectP99';

/** Raw figures: metric -> configuration -> one value per repetition. */
type Raw = Map<Metric, Map<FirewallName | 'ceiling', number[]>>;

function record(raw: Raw, metric: Metric, subject: FirewallName | 'ceiling', value: number): void {
  const bySubject = raw.get(metric) ?? new Map<FirewallName | 'ceiling', number[]>();
  raw.set(metric, bySubject);
  bySubject.set(subject, [...(bySubject.get(subject) ?? []), value]);
}

async function measureRep(lab: Lab, plan: LabPlan, raw: Raw, report: Report, log: (line: string) => void): Promise<void> {
  const fl = await prepareForwarding(lab, plan.flows);
  record(raw, 'pps', 'ceiling', await ceilingPps(lab, fl, plan.ppsMs));
  for (const fw of firewalls()) {
    // One configuration failing (a daemon that does not start) must not
    // cost the others' figures: it is reported and the run goes on.
    try {
      await fw.apply(lab);
    } catch (err) {
      report.problem(`lab ${fw.name}`, err);
      log(lab.diagnostics());
      continue;
    }
    try {
      await openUdpFlows(lab, fl);
      record(raw, 'pps', fw.name, await forwardedPps(lab, fl, plan.ppsMs));
      record(raw, 'bulk1', fw.name, await tcpBulk(lab, 1, plan.bulkSeconds));
      record(raw, 'bulk8', fw.name, await tcpBulk(lab, 8, plan.bulkSeconds));
      const rate = await connRun(lab, SINGLE.server.v4, plan.connRate);
      record(raw, 'connRate', fw.name, rate.rate);
      const latency = await connRun(lab, SINGLE.server.v4, { count: plan.latencyConns, concurrency: 1 });
      record(raw, 'connectP50', fw.name, latency.connectP50Us);
      record(raw, 'connectP99', fw.name, latency.connectP99Us);
      log(`  ${fw.name}: ${Math.round(rate.rate)} conn/s (${rate.failed} failed)`);
    } catch (err) {
      report.problem(`lab ${fw.name}`, err);
      log(lab.diagnostics());
    } finally {
      await fw.remove(lab);
    }
  }
}

function reps(raw: Raw, metric: Metric, subject: FirewallName | 'ceiling'): number[] {
  return raw.get(metric)?.get(subject) ?? [];
}

function addFigures(report: Report, raw: Raw): void {
  const pps = { section: '2 forwarding', name: '64 B UDP, established flows', unit: 'pps', better: 'higher' } as const;
  report.add({ ...pps, subject: 'ceiling', reps: reps(raw, 'pps', 'ceiling'), note: 'generator into XDP_DROP on the firewall ingress' });
  report.add({ ...pps, subject: 'plain', reps: reps(raw, 'pps', 'plain'), peer: 'ceiling' });
  report.add({ ...pps, subject: 'nftables+ct', reps: reps(raw, 'pps', 'nftables+ct'), peer: 'plain' });
  report.add({ ...pps, subject: 'syncwall', reps: reps(raw, 'pps', 'syncwall'), peer: 'nftables+ct', target: { op: '>=', value: 3 } });

  for (const [metric, streams] of [['bulk1', 1], ['bulk8', 8]] as const) {
    const bulk = { section: '3 tcp bulk', name: `iperf3, ${streams} stream${streams > 1 ? 's' : ''}`, unit: 'bit/s', better: 'higher' } as const;
    report.add({ ...bulk, subject: 'plain', reps: reps(raw, metric, 'plain') });
    report.add({ ...bulk, subject: 'nftables+ct', reps: reps(raw, metric, 'nftables+ct'), peer: 'plain' });
    report.add({ ...bulk, subject: 'syncwall', reps: reps(raw, metric, 'syncwall'), peer: 'plain' });
  }

  const conns = { section: '4 conn rate', name: 'short TCP connections, one node', unit: 'conn/s', better: 'higher' } as const;
  report.add({ ...conns, subject: 'plain', reps: reps(raw, 'connRate', 'plain') });
  report.add({ ...conns, subject: 'nftables+ct', reps: reps(raw, 'connRate', 'nftables+ct'), peer: 'plain' });
  report.add({
    ...conns, subject: 'syncwall', reps: reps(raw, 'connRate', 'syncwall'), peer: 'plain', target: { op: '>=', value: 0.9 },
    note: 'the issue sets 0.9x plain for a 2-node cluster with sync; here one node, no sync',
  });

  for (const [metric, p] of [['connectP50', 'p50'], ['connectP99', 'p99']] as const) {
    const connect = { section: '4 conn rate', name: `connect time ${p}`, unit: 'µs', better: 'lower' } as const;
    const plain = reps(raw, metric, 'plain');
    const sw = reps(raw, metric, 'syncwall');
    report.add({ ...connect, subject: 'plain', reps: plain });
    report.add({ ...connect, subject: 'nftables+ct', reps: reps(raw, metric, 'nftables+ct'), peer: 'plain' });
    report.add({ ...connect, subject: 'syncwall', reps: sw, peer: 'plain' });
    // Per repetition: both were measured minutes apart at most.
    report.add({
      section: '4 conn rate', name: `first-packet added latency ${p}`, subject: 'syncwall - plain', unit: 'µs', better: 'lower',
      reps: sw.map((v, i) => v - (plain[i] ?? Number.NaN)), signed: true,
      ...(p === 'p99' ? { target: { op: '<=', value: 200, on: 'value' } as const } : {}),
    });
  }
}

/** Runs the lab measurements, adding figures to the report; the lab is always removed. */
export async function labSuite(report: Report, plan: LabPlan, log: (line: string) => void): Promise<void> {
  const raw: Raw = new Map();
  try {
    await inLab(singleFirewall(), log, async (lab) => {
      await startUdpEcho(lab, 'srv', BENCH_PORTS.udp);
      await startIperfServer(lab);
      await startConnServer(lab);
      await prepareConnClient(lab);
      for (let rep = 0; rep < plan.reps; rep++) {
        log(`lab ${lab.prefix}: repetition ${rep + 1} of ${plan.reps}`);
        await measureRep(lab, plan, raw, report, log);
      }
    });
  } finally {
    addFigures(report, raw);
  }
}
