// Traffic agent run inside a lab namespace (`node --import tsx agent.ts MODE`).
// Every mode reports on stdout as one JSON object per line, so the harness
// can wait for events instead of sleeping. Every mode is bounded: clients by
// counts and timeouts, servers by the lab's teardown.
//
//   http-server --ports 80,81     answer GET on each port (v4 and v6); log each request
//   udp-echo --port 5353          echo datagrams (v4 and v6)
//   udp-request --host H --port P [--count N] [--timeout-ms T]
//   stream-server --port P        echo TCP byte streams
//   stream-client --host H --port P [--chunk N] [--max-seconds S] [--stall-ms T]
//                                 ping-pong a deterministic byte sequence and
//                                 verify the echo; reports progress, a stall
//                                 (no echo for T ms) and a resume; "stop" on
//                                 stdin ends it
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

function report(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/** Byte at absolute offset i of the stream: a multiplicative hash, so a lost, repeated or reordered segment shows. */
function streamByte(i: number): number {
  return Math.imul(i, 2654435761) >>> 24;
}

function fillStream(buf: Buffer, offset: number): void {
  for (let k = 0; k < buf.length; k++) buf[k] = streamByte(offset + k);
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    ports: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    count: { type: 'string' },
    'timeout-ms': { type: 'string' },
    chunk: { type: 'string' },
    'max-seconds': { type: 'string' },
    'stall-ms': { type: 'string' },
  },
});

function num(name: keyof typeof values, fallback?: number): number {
  const raw = values[name];
  if (raw === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`--${name}: not a number: ${raw}`);
  return n;
}

function str(name: keyof typeof values): string {
  const raw = values[name];
  if (typeof raw !== 'string') throw new Error(`--${name} is required`);
  return raw;
}

function httpServer(): void {
  const ports = str('ports').split(',').map(Number);
  let listening = 0;
  for (const port of ports) {
    const server = createServer((req, res) => {
      report('request', { port, remote: req.socket.remoteAddress, path: req.url });
      res.end(`hello from port ${port}\n`);
    });
    // '::' without ipv6Only accepts IPv4 too (as v4-mapped addresses).
    server.listen({ host: '::', port }, () => {
      if (++listening === ports.length) report('listening', { ports });
    });
  }
}

function udpEcho(): void {
  const port = num('port');
  const sock = createSocket({ type: 'udp6', ipv6Only: false });
  sock.on('message', (msg, rinfo) => {
    report('datagram', { remote: rinfo.address, bytes: msg.length });
    sock.send(msg, rinfo.port, rinfo.address);
  });
  sock.bind(port, '::', () => report('listening', { port }));
}

async function udpRequest(): Promise<void> {
  const host = str('host');
  const port = num('port');
  const count = num('count', 3);
  const timeoutMs = num('timeout-ms', 2000);
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let received = 0;
  for (let i = 0; i < count; i++) {
    const payload = Buffer.from(`syncwall-udp-${i}-${process.pid}`);
    const answered = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        sock.off('message', onMessage);
        resolve(false);
      }, timeoutMs);
      function onMessage(msg: Buffer): void {
        if (!msg.equals(payload)) return;
        clearTimeout(timer);
        sock.off('message', onMessage);
        resolve(true);
      }
      sock.on('message', onMessage);
      sock.send(payload, port, host);
    });
    if (answered) received++;
  }
  sock.close();
  report('done', { sent: count, received });
  process.exitCode = received === count ? 0 : 1;
}

function streamServer(): void {
  const port = num('port');
  const server = createTcpServer((sock) => {
    report('connection', { remote: sock.remoteAddress, remotePort: sock.remotePort });
    sock.on('error', (err) => report('error', { message: err.message }));
    sock.pipe(sock);
  });
  server.listen({ host: '::', port }, () => report('listening', { port }));
}

async function streamClient(): Promise<void> {
  const host = str('host');
  const port = num('port');
  const chunk = num('chunk', 1000);
  const deadline = Date.now() + num('max-seconds', 120) * 1000;
  const stallMs = num('stall-ms', 2000);
  let stopping = false;
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'stop') stopping = true;
  });

  const sock: Socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  report('connected', { localPort: sock.localPort });

  // One chunk in flight at a time: when the firewall cuts the flow, progress
  // stops at once instead of after a window's worth of data.
  let verified = 0;
  let pending = Buffer.alloc(0);
  let waiting: (() => void) | undefined;
  let failure: string | undefined;
  sock.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    waiting?.();
  });
  sock.on('error', (err) => {
    failure = err.message;
    waiting?.();
  });
  sock.on('close', () => {
    failure ??= 'closed by peer';
    waiting?.();
  });

  let lastReport = 0;
  const out = Buffer.alloc(chunk);
  while (!stopping && failure === undefined && Date.now() < deadline) {
    fillStream(out, verified);
    sock.write(out);
    const sentAt = Date.now();
    let stalled = false;
    while (pending.length < chunk && failure === undefined && !stopping && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        waiting = resolve;
        setTimeout(resolve, 100);
      });
      if (!stalled && Date.now() - sentAt >= stallMs) {
        stalled = true;
        report('stalled', { verified });
      }
    }
    if (pending.length < chunk) break;
    if (stalled) report('resumed', { verified });
    for (let k = 0; k < chunk; k++) {
      if (pending[k] !== streamByte(verified + k)) {
        report('mismatch', { offset: verified + k });
        process.exit(1);
      }
    }
    pending = pending.subarray(chunk);
    verified += chunk;
    if (Date.now() - lastReport >= 100) {
      report('progress', { verified });
      lastReport = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  report('done', { verified, failure: failure ?? null, stopped: stopping });
  sock.destroy();
  process.exit(0);
}

const mode = positionals[0];
switch (mode) {
  case 'http-server':
    httpServer();
    break;
  case 'udp-echo':
    udpEcho();
    break;
  case 'udp-request':
    await udpRequest();
    break;
  case 'stream-server':
    streamServer();
    break;
  case 'stream-client':
    await streamClient();
    break;
  default:
    process.stderr.write(`unknown mode ${String(mode)}\n`);
    process.exit(2);
}
