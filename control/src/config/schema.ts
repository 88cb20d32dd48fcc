// The config file's schema (snake_case, as written in YAML) with its
// defaults, and the resolved Config type (camelCase) the daemon uses.
// Every object is strict: an unknown key is an error, so a typo is never
// silently ignored.

import { z } from 'zod';
import { IFNAME, ZONE } from '../rules/names.js';
import { clusterSchema, type ClusterConfig } from './cluster-schema.js';
import { expect, intIn, nonEmpty, positiveInt } from './schema-parts.js';

export type { ClusterConfig } from './cluster-schema.js';

/** A mapping whose keys all have defaults, so the whole section may be left out. */
const section = <T extends z.ZodRawShape>(shape: T) =>
  // `{}` is valid input because every key has a default; the generic type cannot see that.
  z.strictObject(shape, expect('expected a mapping')).prefault({} as never);

const interfaceSchema = z.strictObject({
  name: z.string(expect('expected an interface name')).regex(IFNAME, { error: 'expected an interface name (up to 15 of A-Z a-z 0-9 _ . @ -)' }),
  zone: z.string(expect('expected a zone name')).regex(ZONE, { error: 'expected a zone name ([a-z0-9_-]+)' }),
}, expect('expected a mapping with name and zone'));

export const configSchema = z.strictObject({
  instance: z.string(expect('expected a string')).regex(/^[a-z0-9_-]{1,32}$/, { error: 'expected 1-32 of [a-z0-9_-]' }).default('default'),
  bpffs: nonEmpty('expected an absolute path').refine((p) => p.startsWith('/'), { error: 'expected an absolute path' })
    .default('/sys/fs/bpf/syncwall'),
  interfaces: z.array(interfaceSchema, expect('expected a list of interfaces'))
    .min(1, { error: 'at least one interface is required' })
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((iface, i) => {
        if (seen.has(iface.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `interface "${iface.name}" is listed twice` });
        seen.add(iface.name);
      });
    }),
  xdp_mode: z.enum(['native', 'generic'], { error: 'expected native or generic' }).default('native'),
  rules: nonEmpty('expected a path').default('rules.conf'),
  management: section({ socket: nonEmpty('expected a path').default('/run/syncwall/syncwalld.sock') }),
  tables: section({ connections: intIn(1024, 16_777_216).default(262_144) }),
  punt: section({ rate: positiveInt().default(20_000), burst: positiveInt().default(2_000) }),
  fast_forward: z.boolean({ error: 'expected true or false' }).default(true),
  last_seen_granularity_ms: positiveInt().default(1_000),
  timeouts: section({
    tcp_syn_sent: positiveInt().default(120),
    tcp_syn_recv: positiveInt().default(60),
    tcp_established: positiveInt().default(432_000),
    tcp_fin_wait: positiveInt().default(120),
    tcp_close_wait: positiveInt().default(60),
    tcp_last_ack: positiveInt().default(30),
    tcp_time_wait: positiveInt().default(120),
    tcp_close: positiveInt().default(10),
    udp_unreplied: positiveInt().default(30),
    udp_replied: positiveInt().default(180),
    icmp: positiveInt().default(30),
    generic_unreplied: positiveInt().default(30),
    generic_replied: positiveInt().default(600),
  }),
  expiry: section({ sweep_interval_ms: positiveInt().default(1_000), batch: intIn(1, 1_048_576).default(4_096) }),
  /** Protocol helpers: the longest hold of a command waiting for the cluster's acks of its expectation. */
  helpers: section({ hold_timeout_ms: intIn(1, 10_000).default(50) }),
  log: section({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error'], { error: 'expected trace, debug, info, warn or error' }).default('info') }),
  /** Absent: a single node, no sync. */
  cluster: clusterSchema.optional(),
}, expect('expected a mapping')).superRefine((c, ctx) => {
  // A cluster address is answered on one of syncwall's interfaces.
  const names = new Set(c.interfaces.map((i) => i.name));
  c.cluster?.addresses.forEach((a, i) => {
    if (!names.has(a.interface)) {
      ctx.addIssue({ code: 'custom', path: ['cluster', 'addresses', i, 'interface'], message: `interface "${a.interface}" is not in interfaces (${[...names].join(', ')})` });
    }
  });
});

export type RawConfig = z.output<typeof configSchema>;

type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
/** Timeouts in seconds, keyed like the YAML section in camelCase (tcpSynSent, ...). */
export type Timeouts = { [K in keyof RawConfig['timeouts'] as CamelCase<K & string>]: number };
export type LogLevel = RawConfig['log']['level'];

export interface InterfaceConfig {
  name: string;
  zone: string;
}

/** The resolved configuration: defaults applied, paths absolute. */
export interface Config {
  /** Absolute path of the config file. */
  configFile: string;
  /** Names the pin directory <bpffs>/<instance>. */
  instance: string;
  bpffs: string;
  interfaces: InterfaceConfig[];
  xdpMode: 'native' | 'generic';
  /** Absolute path of the rules file (relative paths resolve against the config file's directory). */
  rules: string;
  /** Socket path, absolute (resolved like `rules`). */
  management: { socket: string };
  tables: { connections: number };
  /** Punts per second per CPU, and the bucket depth. */
  punt: { rate: number; burst: number };
  fastForward: boolean;
  lastSeenGranularityMs: number;
  timeouts: Timeouts;
  expiry: { sweepIntervalMs: number; batch: number };
  helpers: { holdTimeoutMs: number };
  logLevel: LogLevel;
  /** Present when this node is a cluster member. */
  cluster?: ClusterConfig;
}
