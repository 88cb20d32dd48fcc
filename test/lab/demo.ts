// `make demo`: a client, syncwall on a firewall, and a server, each in its
// own network namespace. Runs a little traffic through the firewall, shows
// what the CLI reports, and removes the lab again.
import { createLab, type Lab } from './netns.js';
import { SINGLE, singleFirewall } from './topology.js';
import { curl, ping, startHttpServer } from './traffic.js';

const RULES = `accept proto tcp from ${SINGLE.clientNet.v4},${SINGLE.clientNet.v6} dport 80 zone outside comment "web"
reject proto tcp dport 81 comment "refused politely"
accept proto icmp icmp-type echo-request
accept proto icmpv6 icmp-type echo-request
`;

function say(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

async function show(lab: Lab, args: string[]): Promise<void> {
  say(`syncwall ${args.join(' ')}`);
  const r = await lab.cli(args);
  process.stdout.write(r.stdout + r.stderr);
}

async function demo(lab: Lab): Promise<void> {
  say(`lab ${lab.prefix}: ${lab.topology.hosts.map((h) => lab.ns(h.name)).join(', ')}`);
  process.stdout.write(`rules:\n${RULES}`);
  await lab.startDaemon({ rules: RULES });
  await startHttpServer(lab, 'srv', [80, 81, 8080]);

  for (const addr of [SINGLE.server.v4, SINGLE.server.v6]) {
    say(`client: curl http://${addr.includes(':') ? `[${addr}]` : addr}:80/ (allowed)`);
    const r = await curl(lab, 'cli', addr, 80);
    process.stdout.write(`exit ${r.code}: ${r.stdout || r.stderr}`);
  }
  say('client: curl port 81 (reject: a RST comes back)');
  const rejected = await curl(lab, 'cli', SINGLE.server.v4, 81);
  process.stdout.write(`exit ${rejected.code}: ${rejected.stderr}`);
  say('client: curl port 8080 (no rule: dropped, curl gives up after 2 s)');
  const dropped = await curl(lab, 'cli', SINGLE.server.v4, 8080, { maxTimeS: 2 });
  process.stdout.write(`exit ${dropped.code}: ${dropped.stderr}`);
  for (const addr of [SINGLE.server.v4, SINGLE.server.v6]) {
    say(`client: ping ${addr}`);
    const r = await ping(lab, 'cli', addr, { count: 3 });
    process.stdout.write(`${r.received}/${r.transmitted} replies\n`);
  }

  await show(lab, ['status']);
  await show(lab, ['conns', 'list']);
  await show(lab, ['stats']);
}

const lab = await createLab({ topology: singleFirewall() });
// Ctrl-C removes the lab too (a killed run is reclaimed by the next one).
process.once('SIGINT', () => void lab.teardown().finally(() => process.exit(130)));
try {
  await demo(lab);
} catch (err) {
  process.stderr.write(`${lab.diagnostics()}\n`);
  throw err;
} finally {
  await lab.teardown();
  say(`lab ${lab.prefix} removed`);
}
