// Short TCP connections, run inside lab namespaces. The server closes each
// connection as soon as it is accepted (so TIME_WAIT stays on the server and
// client ports are free again at once); the client keeps `concurrency`
// connections in flight until `count` have completed, timing each
// connect() to its established event (SYN to SYN-ACK, plus the ACK's send).
// Both report JSON lines.
//
//   server --port P
//   client --host H --port P --count N --concurrency C [--timeout-ms T]
//     -> {"event":"done","completed":N,"failed":F,"seconds":S,"connectUs":{"p50":..,"p99":..}}
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    count: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
    'timeout-ms': { type: 'string', default: '30000' },
  },
});

function report(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function server(port: number): void {
  const srv = createServer({ noDelay: true }, (sock) => {
    sock.on('error', () => {});
    sock.end();
  });
  srv.maxConnections = 100_000;
  srv.listen({ host: '::', port, backlog: 4096 }, () => report('listening', { port }));
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : Number.NaN;
}

async function client(host: string, port: number, count: number, concurrency: number, timeoutMs: number): Promise<void> {
  const connectUs = new Float64Array(count);
  let started = 0;
  let completed = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    const deadline = setTimeout(resolve, timeoutMs);
    const finish = (): void => {
      if (completed + failed === count) {
        clearTimeout(deadline);
        resolve();
      } else if (started < count) {
        one();
      }
    };
    const one = (): void => {
      const index = started++;
      const begin = process.hrtime.bigint();
      const sock = connect({ host, port, noDelay: true });
      let ok = false;
      sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
      sock.once('connect', () => {
        connectUs[index] = Number(process.hrtime.bigint() - begin) / 1000;
        ok = true;
      });
      sock.on('data', () => {});
      sock.on('error', () => {});
      sock.once('close', (hadError) => {
        if (ok && !hadError) completed++;
        else failed++;
        finish();
      });
    };
    for (let i = 0; i < Math.min(concurrency, count); i++) one();
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const times = connectUs.filter((v) => v > 0).sort();
  report('done', { completed, failed, seconds, connectUs: { p50: percentile(times, 50), p99: percentile(times, 99) } });
}

const num = (name: 'port' | 'count' | 'concurrency' | 'timeout-ms'): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: a positive integer is required`);
  return n;
};

switch (positionals[0]) {
  case 'server':
    server(num('port'));
    break;
  case 'client':
    await client(values.host ?? '', num('port'), num('count'), num('concurrency'), num('timeout-ms'));
    process.exit(0);
    break;
  default:
    process.stderr.write(`unknown mode ${String(positionals[0])}\n`);
    process.exit(2);
}
