// `syncwall conns list|flush`: filters from options, table or JSON output.
import type { Argv } from 'yargs';
import type { ConnFilter, ConnView } from '../api/backend.js';
import type { ManagementClient } from '../api/client.js';
import { CliError } from './failure.js';
import { formatDuration, formatTable, plural, toJson, write, type Column } from './output.js';
import { parseProtocol, PROTOCOL_NAMES, protocolName } from '../net/protocols.js';

export interface FilterArgs {
  proto?: string;
  addr?: string;
  port?: string;
  state?: string;
  family?: number;
}

export function withFilterOptions<T>(y: Argv<T>): Argv<T & FilterArgs> {
  return y
    .option('proto', { type: 'string', describe: `protocol: ${Object.keys(PROTOCOL_NAMES).join(', ')} or a number` })
    .option('addr', { type: 'string', describe: 'address or prefix matching either endpoint' })
    .option('port', { type: 'string', describe: "port matching either endpoint's port" })
    .option('state', { type: 'string', describe: 'connection state, e.g. established' })
    .option('family', { type: 'number', choices: [4, 6], describe: 'address family' }) as Argv<T & FilterArgs>;
}

/**
 * Converts options to a filter. Only what the wire cannot carry is checked
 * here (names, numbers); the daemon validates the filter's values.
 */
export function filterFromArgs(args: FilterArgs): ConnFilter {
  const filter: ConnFilter = {};
  if (args.family === 4 || args.family === 6) filter.family = args.family;
  if (args.proto !== undefined) {
    const proto = parseProtocol(args.proto);
    if (proto === undefined) throw new CliError(`--proto: "${args.proto}" is not ${Object.keys(PROTOCOL_NAMES).join(', ')} or 0..255`);
    filter.proto = proto;
  }
  if (args.addr !== undefined) filter.addr = args.addr;
  if (args.port !== undefined) {
    if (!/^\d{1,5}$/.test(args.port)) throw new CliError(`--port: "${args.port}" is not a port number`);
    filter.port = Number(args.port);
  }
  if (args.state !== undefined) filter.state = args.state;
  return filter;
}

const COLUMNS: readonly Column[] = [
  { header: 'PROTO' },
  { header: 'SOURCE' },
  { header: 'DESTINATION' },
  { header: 'STATE' },
  { header: 'AGE', align: 'right' },
  { header: 'IDLE', align: 'right' },
  { header: 'PACKETS', align: 'right' },
  { header: 'BYTES', align: 'right' },
  { header: 'RULE', align: 'right' },
  { header: 'FLAGS' },
];

function endpoint(family: 4 | 6, addr: string, port: number): string {
  return family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function row(c: ConnView): string[] {
  return [
    protocolName(c.proto),
    endpoint(c.family, c.src, c.sport),
    endpoint(c.family, c.dst, c.dport),
    c.state,
    formatDuration(c.ageMs),
    formatDuration(c.idleMs),
    `${c.packetsOrig}/${c.packetsReply}`,
    `${c.bytesOrig}/${c.bytesReply}`,
    String(c.ruleId),
    [...c.flags, ...(c.helper ? [`helper=${c.helper}`] : [])].join(','),
  ];
}

/** JSON is written as it streams in (a JSON array); a table needs every row first to align it. */
export async function listConnections(client: ManagementClient, filter: ConnFilter, json: boolean): Promise<void> {
  if (json) {
    let first = true;
    await write('[');
    for await (const c of client.listConnections(filter)) {
      await write(`${first ? '\n' : ',\n'}${toJson(c)}`);
      first = false;
    }
    await write(first ? ']\n' : '\n]\n');
    return;
  }
  const rows: string[][] = [];
  for await (const c of client.listConnections(filter)) rows.push(row(c));
  await write(formatTable(COLUMNS, rows));
}

export async function flushConnections(client: ManagementClient, filter: ConnFilter, json: boolean): Promise<void> {
  const deleted = await client.deleteConnections(filter);
  await write(json ? `${toJson({ deleted })}\n` : `deleted ${plural(deleted, 'connection')}\n`);
}
