// Traffic agent run inside a lab namespace (`node --import tsx agent.ts MODE`).
// Every mode reports on stdout as one JSON object per line, so the harness
// can wait for events instead of sleeping. Every mode is bounded: clients by
// counts and timeouts, servers by the lab's teardown.
//
//   http-server --ports 80,81     answer GET on each port (v4 and v6); log each request
//   udp-echo --port 5353          echo datagrams (v4 and v6)
//   udp-request --host H --port P [--count N] [--timeout-ms T]
//   stream-server --port P        echo TCP byte streams
//   stream-client --host H --port P [--chunk N] [--max-seconds S] [--stall-ms T] [--local-port L]
//                                 ping-pong a deterministic byte sequence and
//                                 verify the echo; reports progress, a stall
//                                 (no echo for T ms) and a resume; "stop" on
//                                 stdin ends it
//   stream-fleet --host H --port P --count N [--chunk B] [--interval-ms T] [--max-seconds S]
//                                 N long-lived connections, each ping-ponging
//                                 its own deterministic byte sequence every T ms
//                                 and verifying the echo; reports per connection
//                                 (alive, bytes verified, largest gap between
//                                 echoes) on "report SEQ" and a last time on
//                                 "stop"; "reset" starts the gaps over
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
    'interval-ms': { type: 'string' },
    'local-port': { type: 'string' },
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
    // Echo each chunk at once: the clients wait for it before sending more.
    sock.setNoDelay(true);
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

  const localPort = values['local-port'] === undefined ? undefined : num('local-port');
  const sock: Socket = connect({ host, port, localPort });
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

/** One connection of a fleet: ping-pongs chunks of its own stream, measures the gaps between echoes. */
class FleetConnection {
  verified = 0;
  private sent = 0;
  lastEcho = Date.now();
  maxGapMs = 0;
  failure: string | undefined;
  localPort = 0;
  private sock: Socket | undefined;

  constructor(
    /** Where this connection's stream starts in the shared sequence: streams differ, so crossed data shows. */
    private readonly base: number,
  ) {}

  async open(host: string, port: number, timeoutMs: number): Promise<void> {
    const sock = connect({ host, port, noDelay: true });
    this.sock = sock;
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (err) => (this.failure ??= err.message));
    sock.on('close', () => (this.failure ??= 'closed by peer'));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.failure ??= `no connection within ${timeoutMs} ms`;
        sock.destroy();
        resolve();
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        this.localPort = sock.localPort ?? 0;
        this.lastEcho = Date.now();
        resolve();
      });
      sock.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Sends the next chunk once everything sent so far has come back. */
  send(chunk: number): void {
    if (!this.sock || this.failure !== undefined || this.sent > this.verified) return;
    const out = Buffer.alloc(chunk);
    fillStream(out, this.base + this.sent);
    this.sent += chunk;
    this.sock.write(out);
  }

  /** Checks echoed bytes as they arrive, however TCP splits them. */
  private onData(d: Buffer): void {
    for (let k = 0; k < d.length; k++) {
      if (d[k] !== streamByte(this.base + this.verified + k)) {
        this.failure ??= `mismatch at offset ${this.verified + k}`;
        this.sock?.destroy();
        return;
      }
    }
    this.verified += d.length;
    const now = Date.now();
    this.maxGapMs = Math.max(this.maxGapMs, now - this.lastEcho);
    this.lastEcho = now;
  }

  /** The report line's entry; the gap includes a stall still in progress. */
  describe(now: number, aliveWithinMs: number) {
    const gapNow = now - this.lastEcho;
    return {
      localPort: this.localPort,
      alive: this.failure === undefined && gapNow < aliveWithinMs,
      verified: this.verified,
      maxGapMs: Math.max(this.maxGapMs, gapNow),
      failure: this.failure ?? null,
    };
  }

  resetGap(): void {
    this.maxGapMs = 0;
  }

  close(): void {
    this.sock?.destroy();
  }
}

async function streamFleet(): Promise<void> {
  const host = str('host');
  const port = num('port');
  const count = num('count');
  const chunk = num('chunk', 64);
  const intervalMs = num('interval-ms', 10);
  const deadline = Date.now() + num('max-seconds', 300) * 1000;
  const aliveWithinMs = num('stall-ms', 5000);
  const conns = Array.from({ length: count }, (_, i) => new FleetConnection(i * 1_000_003));

  // A few connects at a time: every SYN is a first packet for the firewall's controller.
  const parallel = 10;
  for (let i = 0; i < count; i += parallel) {
    await Promise.all(conns.slice(i, i + parallel).map((c) => c.open(host, port, 10_000)));
  }
  report('connected', { count, failed: conns.filter((c) => c.failure !== undefined).length });

  const ticker = setInterval(() => {
    for (const c of conns) c.send(chunk);
  }, intervalMs);
  const describeAll = () => {
    const now = Date.now();
    return conns.map((c) => c.describe(now, aliveWithinMs));
  };
  const finish = (why: string) => {
    clearInterval(ticker);
    report('done', { why, conns: describeAll() });
    for (const c of conns) c.close();
    process.exit(0);
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, seq] = line.trim().split(/\s+/);
    if (command === 'stop') finish('stopped');
    if (command === 'report') report('report', { seq: Number(seq), conns: describeAll() });
    if (command === 'reset') {
      for (const c of conns) c.resetGap();
      report('reset', { seq: Number(seq) });
    }
  });
  setTimeout(() => finish('max-seconds'), Math.max(0, deadline - Date.now())).unref();
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
  case 'stream-fleet':
    await streamFleet();
    break;
  default:
    process.stderr.write(`unknown mode ${String(mode)}\n`);
    process.exit(2);
}
