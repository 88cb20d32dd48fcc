// The optional `cluster:` section of the config file (docs/CLUSTER.md):
// who this node is, who its peers are, how the sync channel is secured and
// which addresses the cluster answers for. Checks that need the rest of the
// file (interfaces) run in the top-level schema; the TLS files are checked
// by the resolver, which knows the config file's directory.

import { isIP } from 'node:net';
import { z } from 'zod';
import { IFNAME } from '../rules/names.js';
import { expect, intIn, nonEmpty, positiveInt } from './schema-parts.js';

const path = () => nonEmpty('expected a path');

/** host:port with an IPv4 address, [IPv6] or a host name, and a port 1..65535. */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const hostPort = () =>
  z.string(expect('expected host:port')).refine((s) => {
    const m = HOST_PORT.exec(s);
    return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
  }, { error: 'expected host:port (IPv6 as [addr]:port)' });

const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

export const SYNC_MODES = ['on-demand', 'periodic', 'combined', 'off'] as const;
const syncMode = () => z.enum(SYNC_MODES, { error: 'expected on-demand, periodic, combined or off' }).default('combined');

const peerSchema = z.strictObject({
  id: intIn(1, 65535),
  address: hostPort(),
}, expect('expected a mapping with id and address'));

const clusterAddressSchema = z.strictObject({
  interface: z.string(expect('expected an interface name')).regex(IFNAME, { error: 'expected an interface name' }),
  address: z.string(expect('expected an IP address')).refine((a) => isIP(a) !== 0, { error: 'expected an IPv4 or IPv6 address' }),
}, expect('expected a mapping with interface and address'));

export const clusterSchema = z.strictObject({
  id: z.string(expect('expected a cluster id')).regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'expected 1-64 of [A-Za-z0-9_.-]' }),
  node_id: intIn(1, 65535),
  mode: z.enum(['load-sharing', 'standby'], { error: 'expected load-sharing or standby' }).default('load-sharing'),
  backups: intIn(0, 16).default(1),
  listen: hostPort(),
  peers: z.array(peerSchema, expect('expected a list of peers')).default([]),
  tls: z.strictObject({ ca: path(), cert: path(), key: path() }, expect('expected a mapping with ca, cert and key')),
  mac: z.string(expect('expected a MAC address'))
    .regex(MAC, { error: 'expected a MAC address like 03:53:57:00:00:01' })
    .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 1, {
      error: 'the cluster MAC must have the multicast bit set (first octet odd), so switches flood it to every node',
    }),
  addresses: z.array(clusterAddressSchema, expect('expected a list of addresses')).default([]),
  heartbeat_ms: positiveInt().default(100),
  failure_timeout_ms: positiveInt().default(400),
  sync: z.strictObject({
    node: syncMode(),
    common: syncMode(),
    periodic_interval_ms: positiveInt().default(10_000),
  }, expect('expected a mapping')).prefault({} as never),
}, expect('expected a mapping')).superRefine((c, ctx) => {
  const seen = new Set<number>();
  c.peers.forEach((p, i) => {
    if (p.id === c.node_id) ctx.addIssue({ code: 'custom', path: ['peers', i, 'id'], message: `${p.id} is this node's node_id` });
    else if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: ['peers', i, 'id'], message: `peer id ${p.id} is listed twice` });
    seen.add(p.id);
  });
  if (c.failure_timeout_ms <= c.heartbeat_ms) {
    ctx.addIssue({ code: 'custom', path: ['failure_timeout_ms'], message: `must be longer than heartbeat_ms (${c.heartbeat_ms})` });
  }
});

export type RawClusterConfig = z.output<typeof clusterSchema>;
export type SyncModeName = (typeof SYNC_MODES)[number];

/** The resolved `cluster:` section (camelCase, TLS paths absolute, MAC as bytes). */
export interface ClusterConfig {
  id: string;
  nodeId: number;
  mode: 'load-sharing' | 'standby';
  /** k: how many nodes back up each bucket. */
  backups: number;
  listen: string;
  peers: { id: number; address: string }[];
  tls: { ca: string; cert: string; key: string };
  /** The shared cluster MAC, lowercase aa:bb:cc:dd:ee:ff. */
  mac: string;
  addresses: { interface: string; address: string }[];
  heartbeatMs: number;
  failureTimeoutMs: number;
  sync: { node: SyncModeName; common: SyncModeName; periodicIntervalMs: number };
}
