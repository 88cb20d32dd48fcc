// `make demo`: a 3-node load-sharing syncwall cluster in network
// namespaces, long-lived verified TCP streams through it, one node killed
// (kill -9, cable pulled), and the CLI showing its buckets moving to the
// survivors while every stream stays alive. Removes the lab at the end.
import { ClusterLab } from './cluster.js';
import { waitFor } from './poll.js';
import { CLUSTER, clusterNode } from './topology.js';
import { fleetSummary, startStreamServer, StreamFleet } from './traffic.js';

const NODES = [1, 2, 3];
const VICTIM = 2;
const STREAMS = 100;
const STREAM_PORT = 9000;
const RULES = `accept proto tcp dport ${STREAM_PORT} zone outside comment "streams"
accept proto icmp icmp-type echo-request
accept proto icmpv6 icmp-type echo-request
`;

function say(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

function line(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function show(cl: ClusterLab, id: number, args: string[]): Promise<void> {
  say(`node ${id}: syncwall ${args.join(' ')}`);
  const r = await cl.cli(id, args);
  process.stdout.write(r.stdout + r.stderr);
}

/** Buckets owned and stream entries held, per running node. */
async function table(cl: ClusterLab, title: string): Promise<void> {
  say(title);
  line('node  state     buckets owned  backed up  stream entries');
  for (const id of cl.running()) {
    const status = await cl.json<{ cluster?: { state: string; bucketsOwned: number; bucketsBackedUp: number } }>(id, ['status']);
    const conns = await cl.json<{ dport: number }[]>(id, ['conns', 'list', '--port', String(STREAM_PORT)]);
    const c = status.cluster;
    line(`${String(id).padEnd(6)}${(c?.state ?? '?').padEnd(10)}${String(c?.bucketsOwned ?? '?').padStart(13)}${String(c?.bucketsBackedUp ?? '?').padStart(11)}${String(conns.filter((x) => x.dport === STREAM_PORT).length).padStart(16)}`);
  }
}

async function demo(cl: ClusterLab): Promise<void> {
  const { lab } = cl;
  say(`lab ${lab.prefix}: client, server, nodes ${NODES.join(', ')} on shared outside/inside segments and a sync network`);
  line(`cluster addresses ${CLUSTER.outside.v4} ${CLUSTER.outside.v6} (outside), ${CLUSTER.inside.v4} ${CLUSTER.inside.v6} (inside), cluster MAC ${CLUSTER.mac}`);
  for (const id of NODES) line(`node ${id}: sync ${clusterNode(id).sync}:${CLUSTER.syncPort}, own addresses ${clusterNode(id).outside.v4} / ${clusterNode(id).inside.v4}`);
  line(`certificates: ${cl.certDir('cluster')} (syncwall cert ca / cert node)`);

  say('starting syncwalld on every node (mutual TLS between peers)');
  await cl.start(NODES);
  await show(cl, 1, ['peers']);

  await startStreamServer(lab, 'srv', STREAM_PORT);
  say(`client: ${STREAMS} long-lived TCP streams to ${CLUSTER.server.v4}:${STREAM_PORT}, each echoing a verified byte sequence every 10 ms`);
  const fleet = await StreamFleet.start(lab, 'cli', CLUSTER.server.v4, STREAM_PORT, STREAMS);
  await fleet.waitAllProgress(30_000);
  line(`${STREAMS - fleet.failedToConnect} of ${STREAMS} connected and moving data`);
  await table(cl, 'before: every node owns about a third of the buckets and holds (1+k)/N of the streams');

  say(`kill -9 node ${VICTIM}'s syncwalld and unplug its interfaces`);
  await fleet.resetGaps();
  await cl.crash(VICTIM);
  await cl.waitGone(VICTIM);
  await waitFor(
    async () => {
      let total = 0;
      for (const id of cl.running()) total += (await cl.json<{ cluster?: { bucketsOwned: number } }>(id, ['status'])).cluster?.bucketsOwned ?? 0;
      return total === 1024;
    },
    { timeoutMs: 10_000, intervalMs: 200, what: 'the survivors to own every bucket' },
  );
  await show(cl, 1, ['peers']);
  await table(cl, `after: node ${VICTIM}'s buckets moved to the survivors, which already held its streams as backups`);

  const conns = await fleet.waitAllProgress(60_000);
  const s = fleetSummary(conns);
  say('the streams');
  line(`${s.alive} of ${STREAMS} alive, ${s.failed} failed, ${s.verified} bytes verified end to end`);
  line(`largest stall caused by the failover: ${s.maxGapMs} ms (a stream's longest wait for its echo)`);
  await fleet.stop();
  if (s.failed > 0 || s.alive < STREAMS) throw new Error(`${STREAMS - s.alive} streams were lost`);
}

const cl = await ClusterLab.create({ nodes: NODES.length, rules: RULES });
// Ctrl-C removes the lab too (a killed run is reclaimed by the next one).
process.once('SIGINT', () => void cl.teardown().finally(() => process.exit(130)));
try {
  await demo(cl);
} catch (err) {
  process.stderr.write(`${cl.diagnostics()}\n`);
  throw err;
} finally {
  await cl.teardown();
  say(`lab ${cl.lab.prefix} removed`);
}
