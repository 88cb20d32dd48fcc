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

// `ct state established` is the fast case the issue names; new flows to the
// benchmark's ports are accepted so the same traffic passes every firewall.
const NFT_RULESET = `table inet syncwall_bench {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct state new ip daddr ${SINGLE.server.v4} udp dport ${BENCH_PORTS.udp} accept
    ct state new ip daddr ${SINGLE.server.v4} tcp dport { ${BENCH_PORTS.iperf}, ${BENCH_PORTS.conns} } accept
  }
}
`;

const nftablesConntrack: Firewall = {
  name: 'nftables+ct',
  async apply(lab) {
    await lab.execChecked(FW, ['nft', '-f', '-'], { input: NFT_RULESET });
  },
  async remove(lab) {
    await lab.execChecked(FW, ['nft', 'delete', 'table', 'inet', 'syncwall_bench']);
    // Entries of this configuration must not linger into the next one.
    await lab.exec(FW, ['conntrack', '-F']);
  },
};

const SYNCWALL_RULES = `accept proto udp to ${SINGLE.server.v4} dport ${BENCH_PORTS.udp} zone outside comment "bench udp flows"
accept proto tcp to ${SINGLE.server.v4} dport ${BENCH_PORTS.iperf},${BENCH_PORTS.conns} zone outside comment "bench tcp"
`;

/**
 * syncwalld with the lab's defaults, except: the punt limit is far above any
 * connection rate the lab reaches (the benchmark measures the controller,
 * not the limiter) and the table holds every connection of a run.
 */
function syncwall(): Firewall {
  let daemon: Daemon | undefined;
  return {
    name: 'syncwall',
    async apply(lab) {
      await lab.execChecked(FW, ['nft', 'flush', 'ruleset']);
      daemon = await lab.startDaemon({
        rules: SYNCWALL_RULES,
        config: { punt: { rate: 1_000_000, burst: 100_000 }, tables: { connections: 1 << 20 } },
      });
    },
    async remove(lab) {
      if (!daemon) return;
      const { configPath } = daemon;
      const exit = await daemon.stop('SIGTERM');
      daemon = undefined;
      if (exit.code !== 0) throw new Error(`syncwalld exited with ${JSON.stringify(exit)}:\n${lab.diagnostics()}`);
      // A stopped daemon leaves its programs attached for the next one to
      // take over; detach is how syncwall is removed.
      await lab.execChecked(FW, ['node', SYNCWALLD, 'detach', '--config', configPath]);
      const devs = lab.firewallInterfaces(FW).map((i) => i.name);
      await waitFor(async () => !(await Promise.all(devs.map((d) => lab.xdpAttached(FW, d)))).some(Boolean), {
        timeoutMs: 10_000,
        what: 'syncwalld to detach its XDP programs',
      });
    },
  };
}

export function firewalls(): Firewall[] {
  return [plain, nftablesConntrack, syncwall()];
}
