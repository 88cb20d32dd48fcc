// Item 8's peers: what netfilter conntrack costs in the kernel per entry,
// and conntrackd's resident set per entry it caches.
//
// Real packets make the entries: trafgen in the client namespace sends UDP
// datagrams through a firewall namespace whose nftables forward chain uses
// conntrack, over source × destination port pairs that do not repeat for
// about 1.1M datagrams; the server's veth drops them in XDP. The kernel's
// cost is the growth of the nf_conntrack slab cache (whole slabs, from
// /proc/slabinfo) per entry created; conntrack extensions (allocated from
// kmalloc caches) are not in it. conntrackd (FTFW, bench/lib/conntrackd.ts)
// is then started in the firewall namespace: it dumps the kernel table into
// its internal cache at start, and its RSS is compared with a conntrackd
// started the same way on an empty table.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLab, type Lab } from '../test/lab/netns.js';
import { sleep, waitFor } from '../test/lab/poll.js';
import { runChecked } from '../test/lab/processes.js';
import { SINGLE, singleFirewall } from '../test/lab/topology.js';
import { attachDrop, mac, prepareForwarding, startTrafgen, stopTrafgen } from './forwarding.js';
import { Conntrackd, requireConntrackd } from './lib/conntrackd.js';
import type { Report } from './lib/report.js';
import { type SlabCache, slabCaches } from './lib/slab.js';

const SECTION = '8 memory';
const FW = 'fw';
/** Source ports 1024-65535 and 17 destination ports: coprime cycle lengths, so 1,096,704 distinct pairs in a row. */
const SPORTS = [1024, 65535] as const;
const DPORTS = [7000, 7016] as const;
/** Unreplied UDP entries time out after 30 s by default: far shorter than a fill of 1M on this machine. */
const UDP_TIMEOUT_S = 900;
const CT_MAX_SYSCTL = 'net.netfilter.nf_conntrack_max';
const MAX_GENERATOR_RUNS = 5;

type Log = (line: string) => void;

const RULESET = `table inet syncwall_bench_ct {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state new,established udp dport ${DPORTS[0]}-${DPORTS[1]} accept
  }
}
`;

/** The nf_conntrack slab cache: its bytes in whole slabs and its object size. */
function conntrackSlab(): SlabCache {
  const cache = slabCaches((name) => name === 'nf_conntrack')[0];
  if (!cache) throw new Error('/proc/slabinfo has no nf_conntrack cache (is the nf_conntrack module loaded?)');
  return cache;
}

async function conntrackCount(lab: Lab): Promise<number> {
  const r = await lab.execChecked(FW, ['conntrack', '-C']);
  return Number(r.stdout.trim());
}

async function sysctl(name: string): Promise<number> {
  return Number((await runChecked(['sysctl', '-n', name])).stdout.trim());
}

/** Sends distinct UDP flows through the firewall until its conntrack table holds `entries` (bounded in time). */
async function fillConntrack(lab: Lab, entries: number, timeoutMs: number): Promise<number> {
  const [cliMac, fwMac] = await Promise.all([mac(lab, 'cli', `${lab.prefix}-cli`), mac(lab, FW, `${lab.prefix}-out`)]);
  const conf = join(lab.tmpDir, 'ct-fill.trafgen');
  writeFileSync(
    conf,
    `{ eth(da=${fwMac}, sa=${cliMac}), ipv4(saddr=${SINGLE.client.v4}, daddr=${SINGLE.server.v4}, ttl=64), ` +
      `udp(sp=dinc(${SPORTS[0]}, ${SPORTS[1]}, 1), dp=dinc(${DPORTS[0]}, ${DPORTS[1]}, 1)), fill(0x00, 18) }\n`,
  );
  const deadline = performance.now() + timeoutMs;
  let count = await conntrackCount(lab);
  // trafgen gives up when the veth's queue refuses its ring for a moment
  // (EAGAIN) on a busy machine; it is started again, each run going through
  // the same port pairs from the start.
  for (let run = 1; count < entries; run++) {
    const left = deadline - performance.now();
    if (left <= 0 || run > MAX_GENERATOR_RUNS) throw new Error(`conntrack holds ${count} of ${entries} entries after ${run - 1} trafgen runs and ${timeoutMs} ms`);
    const gen = startTrafgen(lab, 'cli', `${lab.prefix}-cli`, conf, left);
    try {
      await waitFor(
        async () => {
          count = await conntrackCount(lab);
          return count >= entries || !gen.running;
        },
        { timeoutMs: left, intervalMs: 500, what: `${entries} conntrack entries` },
      );
    } finally {
      await stopTrafgen(gen, left);
    }
  }
  // In-flight datagrams add a few more.
  await sleep(200);
  return conntrackCount(lab);
}

/** conntrackd's RSS once it has dumped the firewall's current table into its cache. */
async function conntrackdRss(lab: Lab, expectCached: number): Promise<number> {
  // A sync link to nobody on the inside network: the cache, not the sync, is measured.
  const d = await Conntrackd.start(lab, { host: FW, link: { dev: `${lab.prefix}-in`, local: SINGLE.fwInside.v4, peer: '10.2.0.250' } });
  try {
    // The start-up dump fills the internal cache; wait until the RSS stops growing.
    let last = -1;
    await waitFor(
      () => {
        const rss = d.rssBytes();
        const steady = rss === last;
        last = rss;
        return steady && (expectCached === 0 || rss > 0);
      },
      { timeoutMs: 120_000, intervalMs: 1000, what: 'conntrackd to finish its start-up dump' },
    );
    return last;
  } finally {
    await d.stop();
  }
}

export async function conntrackMemory(report: Report, opts: { entries: number; timeoutMs: number }, log: Log): Promise<void> {
  await requireConntrackd();
  const sizeName = opts.entries >= 1_000_000 ? `${opts.entries / 1_000_000}M connections` : `${opts.entries / 1000}k connections`;
  const lab = await createLab({ topology: singleFirewall() });
  const ctMax = await sysctl(CT_MAX_SYSCTL);
  try {
    // Permanent neighbours: the server's XDP drop also drops ARP.
    await prepareForwarding(lab, 1);
    await attachDrop(lab, 'srv', `${lab.prefix}-srv`);
    await lab.execChecked(FW, ['nft', '-f', '-'], { input: RULESET });
    await lab.execChecked(FW, ['sysctl', '-w', `net.netfilter.nf_conntrack_udp_timeout=${UDP_TIMEOUT_S}`]);
    // The table limit is the host's (init namespace only); raised for the run, restored after.
    if (ctMax < opts.entries * 1.2) await runChecked(['sysctl', '-w', `${CT_MAX_SYSCTL}=${Math.ceil(opts.entries * 1.2)}`]);
    const emptyRss = await conntrackdRss(lab, 0);
    const slab0 = conntrackSlab();
    const count0 = await conntrackCount(lab);
    const t0 = performance.now();
    const count = (await fillConntrack(lab, opts.entries, opts.timeoutMs)) - count0;
    const slab1 = conntrackSlab();
    log(`bench: conntrack: ${count} entries in ${((performance.now() - t0) / 1000).toFixed(1)} s; nf_conntrack slab ${slab0.bytes} → ${slab1.bytes} B, object ${slab1.objSize} B`);
    report.add({
      section: SECTION,
      name: `kernel bytes per entry, ${sizeName}`,
      subject: 'netfilter conntrack',
      unit: 'B',
      better: 'lower',
      reps: [(slab1.bytes - slab0.bytes) / count],
      note: `nf_conntrack slab growth per entry made by real UDP packets (object ${slab1.objSize} B; extensions not counted)`,
    });
    const fullRss = await conntrackdRss(lab, count);
    log(`bench: conntrackd RSS ${emptyRss} B empty, ${fullRss} B with ${count} entries`);
    report.add({
      section: SECTION,
      name: `controller RSS per entry, ${sizeName}`,
      subject: 'conntrackd',
      unit: 'B',
      better: 'lower',
      reps: [(fullRss - emptyRss) / count],
      note: 'FTFW; RSS after its start-up dump of the table minus RSS on an empty table, per entry',
    });
  } finally {
    if ((await sysctl(CT_MAX_SYSCTL)) !== ctMax) await runChecked(['sysctl', '-w', `${CT_MAX_SYSCTL}=${ctMax}`]);
    await lab.teardown();
  }
}
