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
  | 'endpoint';

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
}

export interface LinkEnd {
  host: string;
  /** Interface suffix; the device is `<prefix>-<dev>`, at most 15 characters. */
  dev: string;
  /** Addresses with prefix length, IPv4 and IPv6. */
  addrs: string[];
  /** Firewall zone of this interface (firewall hosts only). */
  zone?: string;
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
