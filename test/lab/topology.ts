// Lab topologies as data. A topology names hosts (one network namespace
// each) and the veth links between them; netns.ts builds whatever a topology
// describes, so a cluster lab (N firewall nodes, a sync network) is another
// description rather than another harness.
//
// Addresses come from 10.0.0.0/8 and fd00::/8 and exist only inside the lab's
// namespaces, so concurrent labs never see each other's traffic.

export type HostRole =
  /** Forwards between its interfaces; syncwalld runs here. */
  | 'firewall'
  /** Sends and answers traffic (clients, servers). */
  | 'endpoint'
  /** Holds Linux bridges (shared L2 segments); its link ends are bridge ports. */
  | 'switch';

export interface RouteSpec {
  /** `default` or a prefix. */
  to: string;
  via: string;
}

export interface HostSpec {
  /** Short name; the namespace is `<prefix>-<name>`. */
  name: string;
  role: HostRole;
  routes?: RouteSpec[];
  /** Bridges to create (switch hosts): device suffixes like link ends' `dev`. */
  bridges?: string[];
}

export interface LinkEnd {
  host: string;
  /** Interface suffix; the device is `<prefix>-<dev>`, at most 15 characters. */
  dev: string;
  /** Addresses with prefix length, IPv4 and IPv6. */
  addrs: string[];
  /** Firewall zone of this interface (firewall hosts only). */
  zone?: string;
  /** A firewall's cluster sync interface: not filtered by syncwall, so it has no zone. */
  sync?: boolean;
  /** On a switch host: the bridge (a `bridges` entry) this end is a port of. */
  bridge?: string;
}

export interface LinkSpec {
  a: LinkEnd;
  b: LinkEnd;
}

export interface Topology {
  hosts: HostSpec[];
  links: LinkSpec[];
}

/** Addresses of the single-firewall lab, without prefix lengths. */
export const SINGLE = {
  client: { v4: '10.1.0.2', v6: 'fd00:1::2' },
  fwOutside: { v4: '10.1.0.1', v6: 'fd00:1::1' },
  fwInside: { v4: '10.2.0.1', v6: 'fd00:2::1' },
  server: { v4: '10.2.0.2', v6: 'fd00:2::2' },
  clientNet: { v4: '10.1.0.0/24', v6: 'fd00:1::/64' },
  serverNet: { v4: '10.2.0.0/24', v6: 'fd00:2::/64' },
} as const;

/** client `cli` — firewall `fw` (outside | inside) — server `srv`. */
export function singleFirewall(): Topology {
  return {
    hosts: [
      {
        name: 'cli',
        role: 'endpoint',
        routes: [
          { to: 'default', via: SINGLE.fwOutside.v4 },
          { to: 'default', via: SINGLE.fwOutside.v6 },
        ],
      },
      { name: 'fw', role: 'firewall' },
      {
        name: 'srv',
        role: 'endpoint',
        routes: [
          { to: 'default', via: SINGLE.fwInside.v4 },
          { to: 'default', via: SINGLE.fwInside.v6 },
        ],
      },
    ],
    links: [
      {
        a: { host: 'cli', dev: 'cli', addrs: [`${SINGLE.client.v4}/24`, `${SINGLE.client.v6}/64`] },
        b: { host: 'fw', dev: 'out', zone: 'outside', addrs: [`${SINGLE.fwOutside.v4}/24`, `${SINGLE.fwOutside.v6}/64`] },
      },
      {
        a: { host: 'fw', dev: 'in', zone: 'inside', addrs: [`${SINGLE.fwInside.v4}/24`, `${SINGLE.fwInside.v6}/64`] },
        b: { host: 'srv', dev: 'srv', addrs: [`${SINGLE.server.v4}/24`, `${SINGLE.server.v6}/64`] },
      },
    ],
  };
}

/** Cluster addresses and sync settings shared by every cluster lab. */
export const CLUSTER = {
  id: 'lab1',
  /** Multicast bit set (first octet odd): bridges flood it to every node. */
  mac: '03:53:57:00:00:01',
  syncPort: 7400,
  client: { v4: '10.1.0.2', v6: 'fd00:1::2' },
  server: { v4: '10.2.0.2', v6: 'fd00:2::2' },
  outside: { v4: '10.1.0.1', v6: 'fd00:1::1' },
  inside: { v4: '10.2.0.1', v6: 'fd00:2::1' },
  clientNet: { v4: '10.1.0.0/24', v6: 'fd00:1::/64' },
  serverNet: { v4: '10.2.0.0/24', v6: 'fd00:2::/64' },
} as const;

/** A cluster node's own addresses and device suffixes (ids 1..9). */
export function clusterNode(id: number) {
  if (!Number.isInteger(id) || id < 1 || id > 9) throw new Error(`cluster node id ${id}: the lab numbers nodes 1..9`);
  const host = 10 + id;
  return {
    id,
    host: `n${id}`,
    dev: { outside: `n${id}o`, inside: `n${id}i`, sync: `n${id}s` },
    outside: { v4: `10.1.0.${host}`, v6: `fd00:1::${host}` },
    inside: { v4: `10.2.0.${host}`, v6: `fd00:2::${host}` },
    sync: `10.9.0.${id}`,
  };
}

/**
 * client `cli` and server `srv` on two shared segments with `nodes`
 * firewall nodes `n1`..`nN`, plus a sync segment between the nodes. The
 * segments are bridges in one switch namespace `sw` (`bro` outside, `bri`
 * inside, `brs` sync), with multicast snooping off so frames to the cluster
 * MAC reach every node. The cluster addresses belong to no node's kernel:
 * syncwalld answers ARP/ND for them; each node has its own address on each
 * segment for its neighbour resolution.
 */
export function clusterTopology(nodes: number): Topology {
  const ids = Array.from({ length: nodes }, (_, i) => i + 1);
  const links: LinkSpec[] = [
    {
      a: { host: 'cli', dev: 'cli', addrs: [`${CLUSTER.client.v4}/24`, `${CLUSTER.client.v6}/64`] },
      b: { host: 'sw', dev: 'swc', bridge: 'bro', addrs: [] },
    },
    {
      a: { host: 'srv', dev: 'srv', addrs: [`${CLUSTER.server.v4}/24`, `${CLUSTER.server.v6}/64`] },
      b: { host: 'sw', dev: 'sws', bridge: 'bri', addrs: [] },
    },
  ];
  for (const id of ids) {
    const n = clusterNode(id);
    links.push(
      {
        a: { host: n.host, dev: n.dev.outside, zone: 'outside', addrs: [`${n.outside.v4}/24`, `${n.outside.v6}/64`] },
        b: { host: 'sw', dev: `sw${id}o`, bridge: 'bro', addrs: [] },
      },
      {
        a: { host: n.host, dev: n.dev.inside, zone: 'inside', addrs: [`${n.inside.v4}/24`, `${n.inside.v6}/64`] },
        b: { host: 'sw', dev: `sw${id}i`, bridge: 'bri', addrs: [] },
      },
      {
        a: { host: n.host, dev: n.dev.sync, sync: true, addrs: [`${n.sync}/24`] },
        b: { host: 'sw', dev: `sw${id}s`, bridge: 'brs', addrs: [] },
      },
    );
  }
  return {
    hosts: [
      {
        name: 'cli',
        role: 'endpoint',
        routes: [
          { to: 'default', via: CLUSTER.outside.v4 },
          { to: 'default', via: CLUSTER.outside.v6 },
        ],
      },
      { name: 'sw', role: 'switch', bridges: ['bro', 'bri', 'brs'] },
      ...ids.map((id): HostSpec => ({ name: clusterNode(id).host, role: 'firewall' })),
      {
        name: 'srv',
        role: 'endpoint',
        routes: [
          { to: 'default', via: CLUSTER.inside.v4 },
          { to: 'default', via: CLUSTER.inside.v6 },
        ],
      },
    ],
    links,
  };
}
