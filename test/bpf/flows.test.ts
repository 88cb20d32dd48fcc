// Flows without a handshake (UDP, ICMP echo, generic protocols), ICMP errors
// related to tracked flows, and the punt records the controller receives.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventType, FlowState } from '../../control/src/gen/layout.js';
import { buildIpPacket } from '../../control/src/net/packet.js';
import { IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../../control/src/net/protocols.js';
import { check, showPacket } from './fixture.js';
import { LOOPBACK_IFINDEX, normalizedKey, TestDataplane, XDP_DROP, XDP_PASS } from './harness.js';
import { CLIENT4, CLIENT6, frame, ipSpec, SERVER4, SERVER6, type Family } from './packets.js';

const accepted = { CNT_HIT: 1, CNT_FWD_STACK: 1 };
const changed = { ...accepted, CNT_STATE_EVENT: 1 };
const addrs = (family: Family): [string, string] => (family === 4 ? [CLIENT4, SERVER4] : [CLIENT6, SERVER6]);

/** Punts the frame, admits the punted key as the controller would, re-runs the frame. */
function admitFirst(dp: TestDataplane, f: Uint8Array): void {
  check(dp, { description: 'first packet is punted', frame: f, verdict: XDP_DROP, counters: { CNT_PUNT_NEW: 1 } });
  const [p] = dp.takePunts();
  assert.ok(p, showPacket(f));
  dp.admit(p.key, p.srcIsA);
  check(dp, { description: 're-run first packet opens the flow', frame: f, verdict: XDP_PASS, counters: changed });
}

for (const family of [4, 6] as const) {
  describe(`flows without a handshake over IPv${family}`, () => {
    let dp: TestDataplane;
    before(() => (dp = TestDataplane.load()));
    after(() => dp.close());
    const [client, server] = addrs(family);
    const icmpProto = family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    const [echoRequest, echoReply] = family === 4 ? [8, 0] : [128, 129];

    it('UDP: UNREPLIED, then REPLIED on the first reply', () => {
      const query = frame(family, true, { proto: 'udp', sport: 5300, dport: 53, payload: new Uint8Array(20) });
      const answer = frame(family, false, { proto: 'udp', sport: 53, dport: 5300, payload: new Uint8Array(60) });
      admitFirst(dp, query);
      check(dp, { description: 'second query', frame: query, verdict: XDP_PASS, counters: accepted });
      check(dp, { description: 'answer', frame: answer, verdict: XDP_PASS, counters: changed });
      check(dp, { description: 'second answer', frame: answer, verdict: XDP_PASS, counters: accepted });
      const { key } = normalizedKey({ family, proto: IPPROTO_UDP, src: client, sport: 5300, dst: server, dport: 53 });
      const e = dp.entry(key);
      assert.ok(e);
      assert.equal(e.state, FlowState.FS_REPLIED);
      assert.deepEqual(e.packets, [2n, 2n]);
      const hdr = family === 4 ? 20 : 40;
      assert.deepEqual(e.bytes, [BigInt(2 * (hdr + 28)), BigInt(2 * (hdr + 68))]);
      assert.deepEqual(dp.takeEvents().map((ev) => [ev.type, ev.oldState, ev.newState, ev.version]), [
        [EventType.EV_STATE, FlowState.FS_NONE, FlowState.FS_UNREPLIED, 1],
        [EventType.EV_STATE, FlowState.FS_UNREPLIED, FlowState.FS_REPLIED, 2],
      ]);
    });

    it('ICMP echo: the identifier names the flow; a reply cannot open one', () => {
      const request = frame(family, true, { proto: 'icmp', type: echoRequest, id: 77, seq: 1, payload: new Uint8Array(56) });
      const reply = frame(family, false, { proto: 'icmp', type: echoReply, id: 77, seq: 1, payload: new Uint8Array(56) });
      check(dp, { description: 'echo reply without entry', frame: reply, verdict: XDP_DROP, counters: { CNT_DROP_NO_ENTRY: 1 } });
      check(dp, { description: 'echo request without entry', frame: request, verdict: XDP_DROP, counters: { CNT_PUNT_NEW: 1 } });
      const [p] = dp.takePunts();
      assert.ok(p);
      assert.equal(p.icmpType, echoRequest);
      assert.deepEqual(p.key, normalizedKey({ family, proto: icmpProto, src: client, sport: 77, dst: server, dport: 77 }).key);
      dp.admit(p.key, p.srcIsA);
      check(dp, { description: 'echo request re-run', frame: request, verdict: XDP_PASS, counters: changed });
      check(dp, { description: 'echo reply', frame: reply, verdict: XDP_PASS, counters: changed });
      const other = frame(family, false, { proto: 'icmp', type: echoReply, id: 78, seq: 1 });
      check(dp, { description: 'echo reply with another identifier', frame: other, verdict: XDP_DROP, counters: { CNT_DROP_NO_ENTRY: 1 } });
      dp.takeEvents();
    });

    it('generic protocols (GRE) are flows with ports 0', () => {
      const gre = (fromClient: boolean): Uint8Array => frame(family, fromClient, { proto: IPPROTO_GRE, payload: new Uint8Array(24) });
      admitFirst(dp, gre(true));
      check(dp, { description: 'GRE reply', frame: gre(false), verdict: XDP_PASS, counters: changed });
      const { key } = normalizedKey({ family, proto: IPPROTO_GRE, src: client, sport: 0, dst: server, dport: 0 });
      assert.equal(dp.entry(key)?.state, FlowState.FS_REPLIED);
      dp.takeEvents();
    });

    it('ICMP errors quoting a tracked flow are related; others are dropped', () => {
      const syn = { proto: 'tcp', sport: 43000, dport: 443, seq: 1, flags: 'S', window: 1000 } as const;
      admitFirst(dp, frame(family, true, syn));
      dp.takeEvents();
      // The client's SYN as it left; a router on the way answers the client.
      const quoted = buildIpPacket(ipSpec(family, true), syn);
      const router = family === 4 ? '198.51.100.1' : '2001:db8:1::1';
      const error = (type: number, q: Uint8Array, rest = 0): Uint8Array =>
        frame(family, false, { proto: 'icmp', type, code: 0, rest, payload: q }, undefined, { src: router, dst: client });
      const [unreach, timeExceeded, tooBig] = family === 4 ? [3, 11, -1] : [1, 3, 2];
      check(dp, { description: 'destination unreachable quoting the SYN', frame: error(unreach, quoted), verdict: XDP_PASS, counters: { CNT_RELATED_ICMP: 1, CNT_FWD_STACK: 1 } });
      check(dp, { description: 'time exceeded quoting only 8 bytes of TCP', frame: error(timeExceeded, quoted.subarray(0, (family === 4 ? 20 : 40) + 8)), verdict: XDP_PASS, counters: { CNT_RELATED_ICMP: 1, CNT_FWD_STACK: 1 } });
      if (tooBig > 0) check(dp, { description: 'packet too big', frame: error(tooBig, quoted, 1280), verdict: XDP_PASS, counters: { CNT_RELATED_ICMP: 1, CNT_FWD_STACK: 1 } });
      const stranger = buildIpPacket(ipSpec(family, true), { ...syn, sport: 43001 });
      check(dp, { description: 'error quoting an unknown flow', frame: error(unreach, stranger), verdict: XDP_DROP, counters: { CNT_DROP_ICMP_UNRELATED: 1 } });
      check(dp, { description: 'error quoting less than 8 bytes of L4', frame: error(unreach, quoted.subarray(0, (family === 4 ? 20 : 40) + 4)), verdict: XDP_DROP, counters: { CNT_DROP_ICMP_UNRELATED: 1 } });
      const udpQuote = buildIpPacket(ipSpec(family, true), { proto: 'udp', sport: 43000, dport: 443 });
      check(dp, { description: 'error quoting UDP on the TCP flow ports', frame: error(unreach, udpQuote), verdict: XDP_DROP, counters: { CNT_DROP_ICMP_UNRELATED: 1 } });
      assert.deepEqual(dp.takeEvents(), []);
    });
  });
}

describe('punt records', () => {
  let dp: TestDataplane;
  before(() => (dp = TestDataplane.load()));
  after(() => dp.close());

  it('carry meta, the normalized key and the whole frame (small and full records)', () => {
    for (const size of [10, 150, 1400]) {
      const f = frame(6, false, { proto: 'udp', sport: 9000, dport: 7000, payload: new Uint8Array(size).map((_, i) => i) });
      check(dp, { description: `UDP with ${size} bytes`, frame: f, verdict: XDP_DROP, counters: { CNT_PUNT_NEW: 1 } });
      const punts = dp.takePunts();
      assert.equal(punts.length, 1);
      const p = punts[0]!;
      const { key, srcIsA } = normalizedKey({ family: 6, proto: IPPROTO_UDP, src: SERVER6, sport: 9000, dst: CLIENT6, dport: 7000 });
      assert.equal(p.type, EventType.EV_PUNT);
      assert.deepEqual(p.key, key);
      assert.equal(p.srcIsA, srcIsA);
      assert.equal(p.ifindex, LOOPBACK_IFINDEX);
      assert.equal(p.pktLen, f.length);
      assert.equal(p.capLen, f.length);
      assert.equal(p.l3Off, 14);
      assert.equal(p.l4Off, 54);
      assert.deepEqual(p.frame, f);
      assert.equal(p.recordLen, f.length <= 192 ? 72 + 192 : 72 + 1536);
    }
  });

  it('a frame larger than a full record is dropped, not truncated', () => {
    const f = frame(4, true, { proto: 'udp', sport: 1, dport: 2, payload: new Uint8Array(1600) });
    check(dp, { description: 'jumbo first packet', frame: f, verdict: XDP_DROP, counters: { CNT_DROP_PUNT_TOO_BIG: 1 } });
    assert.deepEqual(dp.takePunts(), []);
  });

  it('TCP SYN punts keep the ICMP fields zero', () => {
    const f = frame(4, true, { proto: 'tcp', sport: 5555, dport: 22, seq: 9, flags: 'S' });
    check(dp, { description: 'SYN', frame: f, verdict: XDP_DROP, counters: { CNT_PUNT_NEW: 1 } });
    const [p] = dp.takePunts();
    assert.ok(p);
    assert.deepEqual([p.icmpType, p.icmpCode, p.key.proto], [0, 0, IPPROTO_TCP]);
  });
});

describe('punt rate limit', () => {
  const BURST = 4;
  let dp: TestDataplane;
  // One token per second per CPU: a burst of first packets empties the bucket.
  before(() => (dp = TestDataplane.load({ puntRate: 1n, puntBurst: BigInt(BURST) })));
  after(() => dp.close());

  it('punts at most the burst per CPU, drops the rest, and never limits established flows', () => {
    const N = 40;
    const started = process.hrtime.bigint();
    for (let i = 0; i < N; i++) dp.run(frame(4, true, { proto: 'udp', sport: 20000 + i, dport: 53 }));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const perCpu = dp.countersPerCpu();
    const rx = perCpu.get('CNT_RX')!;
    const punted = perCpu.get('CNT_PUNT_NEW')!;
    const limited = perCpu.get('CNT_DROP_PUNT_LIMIT')!;
    // BPF_PROG_TEST_RUN runs on whichever CPU the test thread is on: each CPU has its bucket.
    const refill = Math.ceil(seconds);
    for (let cpu = 0; cpu < rx.length; cpu++) {
      const seen = Number(rx[cpu]);
      const p = Number(punted[cpu]);
      assert.ok(p >= Math.min(seen, BURST) && p <= Math.min(seen, BURST + refill), `cpu ${cpu}: ${p} punts of ${seen}`);
      assert.equal(p + Number(limited[cpu]), seen);
    }
    assert.equal(dp.takePunts().length, Number(punted.reduce((a, b) => a + b, 0n)));

    // an admitted flow still flows with the bucket empty
    const first = frame(4, true, { proto: 'udp', sport: 20000, dport: 53 });
    const { key, srcIsA } = normalizedKey({ family: 4, proto: IPPROTO_UDP, src: CLIENT4, sport: 20000, dst: SERVER4, dport: 53 });
    dp.admit(key, srcIsA);
    for (let i = 0; i < 10; i++) assert.equal(dp.run(first).verdict, XDP_PASS);
    dp.takeEvents();
  });
});
