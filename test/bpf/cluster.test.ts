// The data plane as a cluster member (DPF_CLUSTER): the bucket filter on
// cluster-MAC frames, the destination-MAC rewrite of frames it hands to the
// stack, the ARP/ND responder for cluster addresses, and EV_FLOW_MISS punts
// of mid-stream packets whose state is on another node. The last suite
// shows that without DPF_CLUSTER none of it happens.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FLOW_KEY_SIZE, flowKey, type FlowKey } from '../../control/src/bpf/codec.js';
import { bucketOf } from '../../control/src/cluster/bucket.js';
import { EventType, TcpWindowFlag } from '../../control/src/gen/layout.js';
import { addressBytes, macBytes } from '../../control/src/net/address.js';
import { finishChecksum, pseudoHeaderSum, sumWords } from '../../control/src/net/checksum.js';
import { buildArpRequest, buildFrame, buildIpPacket, ETH_P_ARP, type TcpSpec } from '../../control/src/net/packet.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP } from '../../control/src/net/protocols.js';
import { check, showPacket } from './fixture.js';
import { DpConfigFlag, LOOPBACK_IFINDEX, normalizedKey, TestDataplane, XDP_DROP, XDP_PASS, XDP_TX } from './harness.js';
import { CLIENT4, CLIENT6, frame, ipSpec, SERVER4, SERVER6, type Family } from './packets.js';

const ME = 2;
const OTHER = 3;
const CLUSTER_MAC = '01:00:5e:7f:00:01';
const IFACE_MAC = '02:00:00:00:00:aa';
const REQUESTER_MAC = '02:00:00:00:00:33';
const CLUSTER_ADDR4 = '192.0.2.1';
const CLUSTER_ADDR6 = '2001:db8:ff::1';
/** Even buckets are this node's, odd ones another's. */
const ownerOf = (bucket: number): number => (bucket % 2 === 0 ? ME : OTHER);

const accepted = { CNT_HIT: 1, CNT_FWD_STACK: 1 };
const changed = { ...accepted, CNT_STATE_EVENT: 1 };

function bucketOfKey(key: FlowKey): number {
  const buf = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(buf, 0, key);
  return bucketOf(buf, 0);
}

let nextPort = 30000;

/** A fresh TCP flow between the test client and server whose bucket this node owns (or not). */
function tcpFlow(family: Family, mine: boolean): { port: number; key: FlowKey; srcIsA: boolean; bucket: number } {
  const [src, dst] = family === 4 ? [CLIENT4, SERVER4] : [CLIENT6, SERVER6];
  for (;;) {
    const port = nextPort++;
    const { key, srcIsA } = normalizedKey({ family, proto: IPPROTO_TCP, src, sport: port, dst, dport: 80 });
    const bucket = bucketOfKey(key);
    if ((ownerOf(bucket) === ME) === mine) return { port, key, srcIsA, bucket };
  }
}

function seg(family: Family, port: number, fromClient: boolean, s: Omit<TcpSpec, 'proto' | 'sport' | 'dport'>, dst = CLUSTER_MAC): Uint8Array {
  const [sport, dport] = fromClient ? [port, 80] : [80, port];
  return frame(family, fromClient, { proto: 'tcp', sport, dport, window: 1000, ...s }, { dst });
}

function loadCluster(): TestDataplane {
  const dp = TestDataplane.load({ flags: DpConfigFlag.DPF_CLUSTER, nodeId: ME, clusterMac: CLUSTER_MAC });
  dp.setBucketOwners(ownerOf);
  dp.setIface(LOOPBACK_IFINDEX, IFACE_MAC);
  dp.addClusterAddr(CLUSTER_ADDR4);
  dp.addClusterAddr(CLUSTER_ADDR6);
  return dp;
}

/** The frame with its Ethernet destination replaced. */
function withDst(f: Uint8Array, mac: string): Uint8Array {
  const out = Uint8Array.from(f);
  out.set(macBytes(mac), 0);
  return out;
}

for (const family of [4, 6] as const) {
  describe(`cluster bucket filter over IPv${family}`, () => {
    let dp: TestDataplane;
    before(() => (dp = loadCluster()));
    after(() => dp.close());

    it("drops cluster-MAC frames of another node's bucket before any table work", () => {
      const f = tcpFlow(family, false);
      const syn = seg(family, f.port, true, { seq: 1, flags: 'S' });
      check(dp, { description: 'SYN of a foreign bucket', frame: syn, verdict: XDP_DROP, counters: { CNT_DROP_NOT_OWNER: 1 } });
      // even with an entry (a replica) the frame is not this node's to forward
      dp.admit(f.key, f.srcIsA);
      check(dp, { description: 'SYN of a foreign bucket with an entry', frame: syn, verdict: XDP_DROP, counters: { CNT_DROP_NOT_OWNER: 1 } });
      assert.equal(dp.entry(f.key)?.packets[0], 0n, 'the entry was touched');
      assert.deepEqual(dp.takePunts(), []);
    });

    it('tracks cluster-MAC frames of its own buckets and readdresses them to the interface for the stack', () => {
      const f = tcpFlow(family, true);
      const syn = seg(family, f.port, true, { seq: 1, flags: 'S' });
      check(dp, { description: 'SYN of an own bucket is punted', frame: syn, verdict: XDP_DROP, counters: { CNT_PUNT_NEW: 1 } });
      const [p] = dp.takePunts();
      assert.ok(p);
      assert.equal(p.type, EventType.EV_PUNT);
      assert.equal(p.bucket, f.bucket);
      // the punt carries the frame as received: the controller re-injects it as such
      assert.deepEqual(p.frame, syn);
      dp.admit(p.key, p.srcIsA);
      const r = check(dp, { description: 'SYN re-run', frame: syn, verdict: XDP_PASS, counters: changed });
      assert.deepEqual(r.out, withDst(syn, IFACE_MAC), 'only the destination MAC changes');
      const [ev] = dp.takeEvents();
      assert.equal(ev?.bucket, f.bucket);
    });

    it('once the controller\'s lease lapses, drops every cluster-MAC frame, even of its own buckets; a renewed lease serves them again', () => {
      const f = tcpFlow(family, true);
      dp.admit(f.key, f.srcIsA);
      const syn = seg(family, f.port, true, { seq: 1, flags: 'S' });
      // a second ago: the data plane's coarse clock may lag the controller's by a tick
      dp.setLease(process.hrtime.bigint() - 1_000_000_000n);
      try {
        check(dp, { description: 'SYN of an own bucket, lease lapsed', frame: syn, verdict: XDP_DROP, counters: { CNT_DROP_NO_CONTROLLER: 1 } });
        assert.equal(dp.entry(f.key)?.packets[0], 0n, 'the entry was not touched');
        // frames to the node's own MAC are its own business, controller or not
        check(dp, { description: 'own-MAC SYN, lease lapsed', frame: withDst(syn, IFACE_MAC), verdict: XDP_PASS, counters: changed });
        dp.takeEvents();
      } finally {
        dp.setLease(process.hrtime.bigint() + 3_600_000_000_000n);
      }
      const g = tcpFlow(family, true);
      dp.admit(g.key, g.srcIsA);
      check(dp, { description: 'SYN of an own bucket, lease renewed', frame: seg(family, g.port, true, { seq: 1, flags: 'S' }), verdict: XDP_PASS, counters: changed });
      dp.takeEvents();
    });

    it('re-learns the windows of an entry not seen since this node regained its bucket: an ACK for data a peer forwarded meanwhile passes', async () => {
      const f = tcpFlow(family, true);
      dp.admit(f.key, f.srcIsA);
      check(dp, { description: 'SYN', frame: seg(family, f.port, true, { seq: 1, flags: 'S' }), verdict: XDP_PASS, counters: changed });
      check(dp, { description: 'SYN/ACK', frame: seg(family, f.port, false, { seq: 5000, ack: 2, flags: 'SA' }), verdict: XDP_PASS, counters: changed });
      check(dp, { description: 'ACK', frame: seg(family, f.port, true, { seq: 2, ack: 5001, flags: 'A' }), verdict: XDP_PASS, counters: changed });
      dp.takeEvents();
      // The server's next 800 bytes went through another node: this one never saw them.
      const ackOfUnseen = seg(family, f.port, true, { seq: 2, ack: 5801, flags: 'A' });
      check(dp, { description: 'ACK of data this node never saw', frame: ackOfUnseen, verdict: XDP_DROP, counters: { CNT_HIT: 1, CNT_DROP_OUT_OF_WINDOW: 1 } });
      // Let the clock pass the owner stamp's margin, then regain every bucket (a lapsed lease renewed).
      await new Promise((resolve) => setTimeout(resolve, 50));
      dp.setBucketOwners(ownerOf, true);
      check(dp, { description: 'the same ACK after the bucket was regained', frame: ackOfUnseen, verdict: XDP_PASS, counters: accepted });
      const e = dp.entry(f.key)!;
      const clientDir = f.srcIsA ? 0 : 1;
      assert.equal(e.win[clientDir].flags & TcpWindowFlag.TCPW_F_UNTRUSTED, 0, "the client's window was re-learned");
      assert.equal(e.win[1 - clientDir]!.flags & TcpWindowFlag.TCPW_F_UNTRUSTED, TcpWindowFlag.TCPW_F_UNTRUSTED, "the server's waits for its next packet");
      check(dp, { description: "the server's next segment", frame: seg(family, f.port, false, { seq: 5801, ack: 2, flags: 'PA', payload: new Uint8Array(100) }), verdict: XDP_PASS, counters: accepted });
      assert.equal(dp.entry(f.key)!.win[1 - clientDir]!.flags & TcpWindowFlag.TCPW_F_UNTRUSTED, 0);
      // once re-learned, checking resumes: an ACK of data never sent is dropped again
      check(dp, { description: 'ACK of data never sent', frame: seg(family, f.port, true, { seq: 2, ack: 900_000, flags: 'A' }), verdict: XDP_DROP, counters: { CNT_HIT: 1, CNT_DROP_OUT_OF_WINDOW: 1 } });
    });

    it("does not filter frames to the node's own MAC, nor readdress them", () => {
      const f = tcpFlow(family, false);
      const syn = seg(family, f.port, true, { seq: 1, flags: 'S' }, IFACE_MAC);
      check(dp, { description: "own-MAC SYN of another node's bucket", frame: syn, verdict: XDP_DROP, counters: { CNT_PUNT_NEW: 1 } });
      const [p] = dp.takePunts();
      assert.ok(p);
      dp.admit(p.key, p.srcIsA);
      const r = check(dp, { description: 'own-MAC SYN re-run', frame: syn, verdict: XDP_PASS, counters: changed });
      assert.deepEqual(r.out, syn);
      dp.takeEvents();
    });

    it('punts a mid-stream packet of an own bucket without entry as EV_FLOW_MISS', () => {
      const f = tcpFlow(family, true);
      const ack = seg(family, f.port, false, { seq: 5000, ack: 1001, flags: 'A', payload: new Uint8Array(10) });
      check(dp, { description: 'mid-stream ACK, own bucket, no entry', frame: ack, verdict: XDP_DROP, counters: { CNT_PUNT_FLOW_MISS: 1 } });
      const [p] = dp.takePunts();
      assert.ok(p, showPacket(ack));
      assert.equal(p.type, EventType.EV_FLOW_MISS);
      assert.deepEqual(p.key, f.key);
      assert.equal(p.srcIsA, !f.srcIsA);
      assert.equal(p.bucket, f.bucket);
      assert.deepEqual(p.frame, ack);
      // the same on the node's own MAC: the bucket is what counts
      check(dp, { description: 'own-MAC mid-stream ACK, own bucket', frame: withDst(ack, IFACE_MAC), verdict: XDP_DROP, counters: { CNT_PUNT_FLOW_MISS: 1 } });
      assert.equal(dp.takePunts()[0]?.type, EventType.EV_FLOW_MISS);
    });

    it("drops a mid-stream packet of another node's bucket", () => {
      const f = tcpFlow(family, false);
      const ack = seg(family, f.port, false, { seq: 5000, ack: 1001, flags: 'A' });
      check(dp, { description: 'cluster-MAC mid-stream ACK, foreign bucket', frame: ack, verdict: XDP_DROP, counters: { CNT_DROP_NOT_OWNER: 1 } });
      check(dp, { description: 'own-MAC mid-stream ACK, foreign bucket', frame: withDst(ack, IFACE_MAC), verdict: XDP_DROP, counters: { CNT_DROP_NO_ENTRY: 1 } });
      assert.deepEqual(dp.takePunts(), []);
    });

    it('sends an ICMP error to the owner of the flow it quotes, not of its own key', () => {
      const server = family === 4 ? SERVER4 : SERVER6;
      const icmpProto = family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
      const unreachable = family === 4 ? 3 : 1;
      for (const mine of [true, false]) {
        const f = tcpFlow(family, mine);
        dp.admit(f.key, f.srcIsA);
        // a router whose error, keyed by itself, lands in a bucket of the other owner
        let router = '';
        for (let i = 1; router === ''; i++) {
          const candidate = family === 4 ? `198.51.100.${i}` : `2001:db8:1::${i.toString(16)}`;
          const own = normalizedKey({ family, proto: icmpProto, src: candidate, sport: 0, dst: server, dport: 0 }).key;
          if ((ownerOf(bucketOfKey(own)) === ME) !== mine) router = candidate;
        }
        const quoted = buildIpPacket(ipSpec(family, false), { proto: 'tcp', sport: 80, dport: f.port, seq: 5000, flags: 'A' });
        const error = buildFrame({
          eth: { dst: CLUSTER_MAC },
          ip: ipSpec(family, false, { src: router, dst: server }),
          l4: { proto: 'icmp', type: unreachable, code: 1, payload: quoted },
        });
        if (mine) {
          const r = check(dp, { description: 'error quoting an own flow', frame: error, verdict: XDP_PASS, counters: { CNT_RELATED_ICMP: 1, CNT_FWD_STACK: 1 } });
          assert.deepEqual(r.out, withDst(error, IFACE_MAC));
        } else {
          check(dp, { description: "error quoting another node's flow", frame: error, verdict: XDP_DROP, counters: { CNT_DROP_NOT_OWNER: 1 } });
        }
      }
    });
  });
}

describe('cluster ARP responder', () => {
  let dp: TestDataplane;
  before(() => (dp = loadCluster()));
  after(() => dp.close());

  it('answers a request for a cluster address with the cluster MAC', () => {
    const request = buildArpRequest(REQUESTER_MAC, '192.0.2.77', CLUSTER_ADDR4);
    const r = check(dp, { description: 'ARP who-has cluster address', frame: request, verdict: XDP_TX, counters: { CNT_CLUSTER_ARP_REPLY: 1 } });
    const expected = new Uint8Array(42);
    const dv = new DataView(expected.buffer);
    expected.set(macBytes(REQUESTER_MAC), 0);
    expected.set(macBytes(IFACE_MAC), 6);
    dv.setUint16(12, ETH_P_ARP);
    dv.setUint16(14, 1); // Ethernet
    dv.setUint16(16, 0x0800);
    expected[18] = 6;
    expected[19] = 4;
    dv.setUint16(20, 2); // reply
    expected.set(macBytes(CLUSTER_MAC), 22);
    expected.set(addressBytes(CLUSTER_ADDR4), 28);
    expected.set(macBytes(REQUESTER_MAC), 32);
    expected.set(addressBytes('192.0.2.77'), 38);
    assert.deepEqual(r.out, expected, showPacket(r.out));
  });

  it('keeps the padding of a minimum-size frame', () => {
    const request = new Uint8Array(60);
    request.set(buildArpRequest(REQUESTER_MAC, '192.0.2.78', CLUSTER_ADDR4));
    const r = check(dp, { description: 'padded ARP request', frame: request, verdict: XDP_TX, counters: { CNT_CLUSTER_ARP_REPLY: 1 } });
    assert.equal(r.out.length, 60);
    assert.deepEqual(r.out.subarray(42), new Uint8Array(18));
  });

  it('passes other ARP to the stack untouched', () => {
    const other = buildArpRequest(REQUESTER_MAC, '192.0.2.77', '192.0.2.9');
    const r = check(dp, { description: 'ARP who-has another address', frame: other, verdict: XDP_PASS, counters: { CNT_PASS_NON_IP: 1 } });
    assert.deepEqual(r.out, other);
    check(dp, { description: 'ARP for the cluster address on another interface', frame: buildArpRequest(REQUESTER_MAC, '192.0.2.77', CLUSTER_ADDR4), ifindex: 2, verdict: XDP_PASS, counters: { CNT_PASS_NON_IP: 1 } });
    const reply = buildArpRequest(REQUESTER_MAC, '192.0.2.77', CLUSTER_ADDR4);
    reply[21] = 2;
    check(dp, { description: 'ARP reply naming the cluster address', frame: reply, verdict: XDP_PASS, counters: { CNT_PASS_NON_IP: 1 } });
  });
});

describe('cluster neighbour-discovery responder', () => {
  let dp: TestDataplane;
  before(() => (dp = loadCluster()));
  after(() => dp.close());
  const requester = '2001:db8:ff::77';
  const target = addressBytes(CLUSTER_ADDR6);
  const solicitedNode = 'ff02::1:ff00:1';
  const solicitedNodeMac = '33:33:ff:00:00:01';

  function solicitation(src: string, targetAddr: Uint8Array, opts: { hopLimit?: number; withSourceLl?: boolean; nonce?: boolean } = {}): Uint8Array {
    const option = [...(opts.withSourceLl === false ? [] : [1, 1, ...macBytes(REQUESTER_MAC)]), ...(opts.nonce ? [14, 1, 1, 2, 3, 4, 5, 6] : [])];
    return buildFrame({
      eth: { src: REQUESTER_MAC, dst: solicitedNodeMac },
      ip: { version: 6, src, dst: solicitedNode, hopLimit: opts.hopLimit ?? 255 },
      l4: { proto: 'icmp', type: 135, rest: 0, payload: Uint8Array.from([...targetAddr, ...option]) },
    });
  }

  function advertisement(dst: string, dstMac: string, flags: number): Uint8Array {
    return buildFrame({
      eth: { src: IFACE_MAC, dst: dstMac },
      ip: { version: 6, src: CLUSTER_ADDR6, dst, hopLimit: 255 },
      l4: { proto: 'icmp', type: 136, rest: flags, payload: Uint8Array.from([...target, 2, 1, ...macBytes(CLUSTER_MAC)]) },
    });
  }

  function assertChecksumValid(f: Uint8Array): void {
    const ip = f.subarray(14);
    const sum = pseudoHeaderSum(ip, 8, 24, 16, IPPROTO_ICMPV6, ip.length - 40) + sumWords(ip, 40, ip.length);
    assert.equal(finishChecksum(sum), 0, `ICMPv6 checksum invalid\n${showPacket(f)}`);
  }

  it('answers a solicitation for a cluster address: router, solicited, override, target = cluster MAC', () => {
    const r = check(dp, { description: 'NS for the cluster address', frame: solicitation(requester, target), verdict: XDP_TX, counters: { CNT_CLUSTER_ARP_REPLY: 1 } });
    assert.deepEqual(r.out, advertisement(requester, REQUESTER_MAC, 0xe0000000), showPacket(r.out));
    assertChecksumValid(r.out);
  });

  it('answers duplicate address detection (unspecified source) to all-nodes, not solicited', () => {
    const r = check(dp, { description: 'DAD NS for the cluster address', frame: solicitation('::', target, { withSourceLl: false }), verdict: XDP_TX, counters: { CNT_CLUSTER_ARP_REPLY: 1 } });
    // the solicitation had no option: the frame grew to the advertisement's size
    assert.deepEqual(r.out, advertisement('ff02::1', '33:33:00:00:00:01', 0xa0000000), showPacket(r.out));
    assertChecksumValid(r.out);
  });

  it('drops options of the solicitation it does not answer with (RFC 3971 nonce): the frame shrinks', () => {
    const r = check(dp, { description: 'NS with a nonce option', frame: solicitation(requester, target, { nonce: true }), verdict: XDP_TX, counters: { CNT_CLUSTER_ARP_REPLY: 1 } });
    assert.deepEqual(r.out, advertisement(requester, REQUESTER_MAC, 0xe0000000), showPacket(r.out));
  });

  it('passes other neighbour discovery to the stack untouched', () => {
    const other = solicitation(requester, addressBytes('2001:db8:ff::9'));
    const r = check(dp, { description: 'NS for another address', frame: other, verdict: XDP_PASS, counters: { CNT_PASS_ND: 1 } });
    assert.deepEqual(r.out, other);
    check(dp, { description: 'NS with hop limit 64 (not from the link)', frame: solicitation(requester, target, { hopLimit: 64 }), verdict: XDP_PASS, counters: { CNT_PASS_ND: 1 } });
    check(dp, { description: 'NS for the cluster address on another interface', frame: solicitation(requester, target), ifindex: 2, verdict: XDP_PASS, counters: { CNT_PASS_ND: 1 } });
    const na = advertisement(requester, REQUESTER_MAC, 0xe0000000);
    check(dp, { description: 'an advertisement', frame: na, verdict: XDP_PASS, counters: { CNT_PASS_ND: 1 } });
  });
});

describe('without DPF_CLUSTER nothing of the cluster applies', () => {
  let dp: TestDataplane;
  before(() => {
    dp = TestDataplane.load({ nodeId: ME, clusterMac: CLUSTER_MAC });
    dp.setBucketOwners(ownerOf);
    dp.setIface(LOOPBACK_IFINDEX, IFACE_MAC);
    dp.addClusterAddr(CLUSTER_ADDR4);
  });
  after(() => dp.close());

  it('no bucket filter, no readdressing, no flow-miss punts, no ARP answers', () => {
    const f = tcpFlow(4, false);
    const syn = seg(4, f.port, true, { seq: 1, flags: 'S' });
    check(dp, { description: 'cluster-MAC SYN of a foreign bucket', frame: syn, verdict: XDP_DROP, counters: { CNT_PUNT_NEW: 1 } });
    const [p] = dp.takePunts();
    assert.equal(p?.bucket, f.bucket);
    dp.admit(f.key, f.srcIsA);
    const r = check(dp, { description: 'SYN re-run', frame: syn, verdict: XDP_PASS, counters: changed });
    assert.deepEqual(r.out, syn);
    dp.takeEvents();
    const own = tcpFlow(4, true);
    check(dp, { description: 'mid-stream ACK without entry', frame: seg(4, own.port, true, { seq: 1, ack: 1, flags: 'A' }), verdict: XDP_DROP, counters: { CNT_DROP_NO_ENTRY: 1 } });
    check(dp, { description: 'ARP who-has the cluster address', frame: buildArpRequest(REQUESTER_MAC, '192.0.2.77', CLUSTER_ADDR4), verdict: XDP_PASS, counters: { CNT_PASS_NON_IP: 1 } });
  });
});
