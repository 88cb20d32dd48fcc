// Opens UDP flows through the firewall before a packet generator reuses
// them: binds one socket per source port (first..first+count-1), sends one
// datagram from each to an echo server and waits (bounded) for the echoes,
// so the firewall has seen both directions of every flow. Flows still
// unanswered are tried again every RETRY_MS: a burst of first packets may
// overflow the echo server's socket buffer. Run inside a lab
// namespace; reports one JSON line: {"event":"done","flows":N,"answered":M}.
//
//   node --import tsx bench/agents/udp-flows.ts --host H --port P --first-port F --count N [--timeout-ms T]
import { createSocket, type Socket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    'first-port': { type: 'string' },
    count: { type: 'string' },
    'timeout-ms': { type: 'string', default: '5000' },
  },
});
const host = values.host ?? '';
const port = Number(values.port);
const firstPort = Number(values['first-port']);
const count = Number(values.count);
const timeoutMs = Number(values['timeout-ms']);
if (!host || ![port, firstPort, count, timeoutMs].every(Number.isInteger)) {
  process.stderr.write('usage: udp-flows --host H --port P --first-port F --count N [--timeout-ms T]\n');
  process.exit(2);
}

const RETRY_MS = 200;
const family = host.includes(':') ? 'udp6' : 'udp4';
const sockets: Socket[] = [];
const unanswered = new Set<number>();
const done = new Promise<void>((resolve) => {
  const finish = (): void => {
    clearTimeout(deadline);
    clearInterval(retry);
    resolve();
  };
  const deadline = setTimeout(finish, timeoutMs);
  const retry = setInterval(() => {
    for (const i of unanswered) sockets[i]!.send(Buffer.from(`flow ${i}`), port, host);
  }, RETRY_MS);
  for (let i = 0; i < count; i++) {
    const sock = createSocket(family);
    sockets.push(sock);
    unanswered.add(i);
    sock.once('message', () => {
      unanswered.delete(i);
      if (unanswered.size === 0) finish();
    });
    sock.bind(firstPort + i, () => sock.send(Buffer.from(`flow ${i}`), port, host));
  }
});
await done;
const answered = count - unanswered.size;
for (const s of sockets) s.close();
process.stdout.write(`${JSON.stringify({ event: 'done', flows: count, answered })}\n`);
