// The three ways the benchmark lab's firewall node forwards: plain Linux
// forwarding with no rules, nftables with conntrack, and syncwall (the real
// daemon). Each admits exactly the benchmark's flows, so every packet that
// is measured is one the firewall accepts.
import { type Daemon, SYNCWALLD } from '../../test/lab/daemon.js';
import type { Lab } from '../../test/lab/netns.js';
import { waitFor } from '../../test/lab/poll.js';
import { SINGLE } from '../../test/lab/topology.js';

/** The ports the benchmark's flows go to on the server. */
export const BENCH_PORTS = { udp: 7000, iperf: 5201, conns: 8000 } as const;

export type FirewallName = 'plain' | 'nftables+ct' | 'syncwall';

export interface Firewall {
  readonly name: FirewallName;
  apply(lab: Lab): Promise<void>;
  remove(lab: Lab): Promise<void>;
}

const FW = 'fw';

const plain: Firewall = {
  name: 'plain',
  async apply(lab) {
    await lab.execChecked(FW, ['nft', 'flush', 'ruleset']);
  },
  async remove() {},
};

const NFT_TABLE = 'syncwall_bench';

// `ct state established` is the fast case the issue names; new flows to the
// benchmark's ports are accepted so the same traffic passes every firewall.
function nftConntrackRuleset(server: string): string {
  return `table inet ${NFT_TABLE} {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct state new ip daddr ${server} udp dport ${BENCH_PORTS.udp} accept
    ct state new ip daddr ${server} tcp dport { ${BENCH_PORTS.iperf}, ${BENCH_PORTS.conns} } accept
  }
}
`;
}

/** The nftables+conntrack ruleset on a firewall host, admitting the benchmark's flows to `server`. */
export async function applyNftConntrack(lab: Lab, host: string, server: string): Promise<void> {
  await lab.execChecked(host, ['nft', '-f', '-'], { input: nftConntrackRuleset(server) });
}

export async function removeNftConntrack(lab: Lab, host: string): Promise<void> {
  await lab.execChecked(host, ['nft', 'delete', 'table', 'inet', NFT_TABLE]);
  // Entries of this configuration must not linger into the next one.
  await lab.exec(host, ['conntrack', '-F']);
}

const nftablesConntrack: Firewall = {
  name: 'nftables+ct',
  apply: (lab) => applyNftConntrack(lab, FW, SINGLE.server.v4),
  remove: (lab) => removeNftConntrack(lab, FW),
};

/** syncwall's rules admitting the benchmark's flows to `server` (the same ones as the nftables ruleset). */
export function syncwallBenchRules(server: string): string {
  return `accept proto udp to ${server} dport ${BENCH_PORTS.udp} zone outside comment "bench udp flows"
accept proto tcp to ${server} dport ${BENCH_PORTS.iperf},${BENCH_PORTS.conns} zone outside comment "bench tcp"
`;
}

/**
 * syncwalld config keys that differ from the lab's defaults: the punt limit
 * is far above any connection rate the lab reaches (the benchmark measures
 * the controller, not the limiter) and the table holds every connection of a run.
 */
export const SYNCWALL_BENCH_CONFIG = { punt: { rate: 1_000_000, burst: 100_000 }, tables: { connections: 1 << 20 } } as const;

/** syncwalld stopped with another exit than 0; syncwall was removed from its host all the same. */
export class SyncwalldExitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SyncwalldExitError';
  }
}

/**
 * Stops a daemon and removes syncwall from its host: a stopped daemon leaves
 * its programs attached for the next one to take over; detach is how
 * syncwall is removed. A bad exit is thrown (SyncwalldExitError) only once
 * the host is clean, so the configurations after it can still be measured.
 */
export async function removeSyncwall(lab: Lab, daemon: Daemon): Promise<void> {
  const exit = await daemon.stop('SIGTERM');
  await lab.execChecked(daemon.host, ['node', SYNCWALLD, 'detach', '--config', daemon.configPath]);
  const devs = lab.firewallInterfaces(daemon.host).map((i) => i.name);
  await waitFor(async () => !(await Promise.all(devs.map((d) => lab.xdpAttached(daemon.host, d)))).some(Boolean), {
    timeoutMs: 10_000,
    what: `syncwalld on ${daemon.host} to detach its XDP programs`,
  });
  if (exit.code !== 0) throw new SyncwalldExitError(`syncwalld on ${daemon.host} exited with ${JSON.stringify(exit)} after SIGTERM:\n${daemon.describe()}`);
}

/** syncwalld with the benchmark's rules and config. */
function syncwall(): Firewall {
  let daemon: Daemon | undefined;
  return {
    name: 'syncwall',
    async apply(lab) {
      await lab.execChecked(FW, ['nft', 'flush', 'ruleset']);
      daemon = await lab.startDaemon({ rules: syncwallBenchRules(SINGLE.server.v4), config: SYNCWALL_BENCH_CONFIG });
    },
    async remove(lab) {
      if (!daemon) return;
      const stopping = daemon;
      daemon = undefined;
      await removeSyncwall(lab, stopping);
    },
  };
}

export function firewalls(): Firewall[] {
  return [plain, nftablesConntrack, syncwall()];
}
