// Parser edge cases through the real object: VLAN tags, IPv4 options, IPv6
// extension chains, truncation at every length, bogus header fields, and the
// traffic that goes to the stack untouched (ARP, neighbour discovery).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildArpRequest, buildFrame, ETH_P_8021AD, type Ipv6Extension } from '../../control/src/net/packet.js';
import { IPPROTO_GRE } from '../../control/src/net/protocols.js';
import { check, showPacket, type Fixture } from './fixture.js';
import { TestDataplane, XDP_DROP, XDP_PASS } from './harness.js';
import { CLIENT4, CLIENT6, frame, SERVER4, SERVER6 } from './packets.js';

const syn = { proto: 'tcp', sport: 40000, dport: 80, seq: 1000, flags: 'S' } as const;
const udp = { proto: 'udp', sport: 5353, dport: 53, payload: new Uint8Array(12) } as const;
const punted = { CNT_PUNT_NEW: 1 };
const malformed = { CNT_DROP_MALFORMED: 1 };
const hbh = (n: number): Ipv6Extension[] => Array.from({ length: n }, () => ({ type: 'destination' }) as const);

const fixtures: Fixture[] = [
  { description: 'plain IPv4 TCP SYN is punted', frame: frame(4, true, syn), verdict: XDP_DROP, counters: punted },
  { description: 'one 802.1Q tag', frame: frame(4, true, syn, { vlans: [{ id: 10 }] }), verdict: XDP_DROP, counters: punted },
  {
    description: 'QinQ: 802.1ad outer and 802.1Q inner tag',
    frame: frame(6, true, udp, { vlans: [{ id: 100, tpid: ETH_P_8021AD }, { id: 10 }] }),
    verdict: XDP_DROP,
    counters: punted,
  },
  {
    description: 'three tags are more than the parser walks',
    frame: frame(4, true, syn, { vlans: [{ id: 1, tpid: ETH_P_8021AD }, { id: 2 }, { id: 3 }] }),
    verdict: XDP_DROP,
    counters: malformed,
  },
  {
    description: 'IPv4 with 8 bytes of options (IHL 7)',
    frame: frame(4, true, syn, undefined, { options: Uint8Array.from([0x94, 4, 0, 0, 1, 1, 1, 0]) }),
    verdict: XDP_DROP,
    counters: punted,
  },
  { description: 'IPv4 IHL 4', frame: frame(4, true, syn, undefined, { ihl: 4 }), verdict: XDP_DROP, counters: malformed },
  { description: 'IPv4 IHL beyond the total length', frame: frame(4, true, syn, undefined, { ihl: 15 }), verdict: XDP_DROP, counters: malformed },
  {
    description: 'IPv4 total length beyond the frame',
    frame: frame(4, true, syn, undefined, { totalLength: 200 }),
    verdict: XDP_DROP,
    counters: malformed,
  },
  {
    description: 'IPv4 total length shorter than the L4 header',
    frame: frame(4, true, syn, undefined, { totalLength: 30 }),
    verdict: XDP_DROP,
    counters: malformed,
  },
  {
    description: 'Ethernet padding after the IPv4 packet is fine',
    frame: Uint8Array.from([...frame(4, true, syn), ...new Uint8Array(6)]),
    verdict: XDP_DROP,
    counters: punted,
  },
  { description: 'TCP data offset 4', frame: frame(4, true, { ...syn, dataOffset: 4 }), verdict: XDP_DROP, counters: malformed },
  {
    description: 'TCP data offset beyond the segment',
    frame: frame(6, true, { ...syn, dataOffset: 15 }),
    verdict: XDP_DROP,
    counters: malformed,
  },
  { description: 'TCP SYN+FIN', frame: frame(4, true, { ...syn, flags: 'SF' }), verdict: XDP_DROP, counters: { CNT_DROP_TCP_FLAGS: 1 } },
  { description: 'TCP without flags', frame: frame(4, true, { ...syn, flags: '' }), verdict: XDP_DROP, counters: { CNT_DROP_TCP_FLAGS: 1 } },
  { description: 'UDP length beyond the datagram', frame: frame(4, true, { ...udp, length: 100 }), verdict: XDP_DROP, counters: malformed },
  {
    description: 'IPv4 first fragment (MF)',
    frame: frame(4, true, udp, undefined, { moreFragments: true }),
    verdict: XDP_DROP,
    counters: { CNT_DROP_FRAGMENT: 1 },
  },
  {
    description: 'IPv4 non-first fragment',
    frame: frame(4, true, udp, undefined, { fragmentOffset: 185 }),
    verdict: XDP_DROP,
    counters: { CNT_DROP_FRAGMENT: 1 },
  },
  {
    description: 'IPv4 DF alone is no fragment',
    frame: frame(4, true, udp, undefined, { dontFragment: true }),
    verdict: XDP_DROP,
    counters: punted,
  },
  {
    description: 'IPv6 fragment header',
    frame: frame(6, true, udp, undefined, { extensions: [{ type: 'fragment', offset: 0, more: true, id: 7 }] }),
    verdict: XDP_DROP,
    counters: { CNT_DROP_FRAGMENT: 1 },
  },
  {
    description: 'IPv6 hop-by-hop, routing and destination options before TCP',
    frame: frame(6, true, syn, undefined, {
      extensions: [{ type: 'hop-by-hop', options: Uint8Array.from([5, 2, 0, 0]) }, { type: 'routing', addresses: [SERVER6] }, { type: 'destination' }],
    }),
    verdict: XDP_DROP,
    counters: punted,
  },
  { description: 'IPv6 chain of 6 extension headers', frame: frame(6, true, udp, undefined, { extensions: hbh(6) }), verdict: XDP_DROP, counters: punted },
  { description: 'IPv6 chain of 7 extension headers is too long', frame: frame(6, true, udp, undefined, { extensions: hbh(7) }), verdict: XDP_DROP, counters: malformed },
  {
    description: 'IPv6 extension header running past the payload',
    frame: frame(6, true, udp, undefined, { extensions: [{ type: 'destination', options: new Uint8Array(30) }], payloadLength: 16 }),
    verdict: XDP_DROP,
    counters: malformed,
  },
  { description: 'IPv6 payload length beyond the frame', frame: frame(6, true, udp, undefined, { payloadLength: 400 }), verdict: XDP_DROP, counters: malformed },
  { description: 'IPv6 payload length 0 (jumbogram)', frame: frame(6, true, udp, undefined, { payloadLength: 0 }), verdict: XDP_DROP, counters: malformed },
  { description: 'GRE is a generic flow: punted', frame: frame(4, true, { proto: IPPROTO_GRE, payload: new Uint8Array(8) }), verdict: XDP_DROP, counters: punted },
  { description: 'ARP goes to the stack', frame: buildArpRequest('02:00:00:00:00:01', CLIENT4, SERVER4), verdict: XDP_PASS, counters: { CNT_PASS_NON_IP: 1 } },
  {
    description: 'IPv6 neighbour solicitation goes to the stack',
    frame: buildFrame({ ip: { version: 6, src: 'fe80::1', dst: 'ff02::1:ff00:20', hopLimit: 255 }, l4: { proto: 'icmp', type: 135, payload: new Uint8Array(16) } }),
    verdict: XDP_PASS,
    counters: { CNT_PASS_ND: 1 },
  },
  {
    description: 'IPv6 router advertisement goes to the stack',
    frame: buildFrame({ ip: { version: 6, src: 'fe80::1', dst: 'ff02::1', hopLimit: 255 }, l4: { proto: 'icmp', type: 134, payload: new Uint8Array(8) } }),
    verdict: XDP_PASS,
    counters: { CNT_PASS_ND: 1 },
  },
  {
    description: 'MLDv2 report behind hop-by-hop (router alert) goes to the stack',
    frame: buildFrame({
      ip: { version: 6, src: 'fe80::1', dst: 'ff02::16', hopLimit: 1, extensions: [{ type: 'hop-by-hop', options: Uint8Array.from([5, 2, 0, 0]) }] },
      l4: { proto: 'icmp', type: 143, payload: new Uint8Array(4) },
    }),
    verdict: XDP_PASS,
    counters: { CNT_PASS_ND: 1 },
  },
  { description: 'ICMPv4 header cut short by the IP length', frame: frame(4, true, { proto: 'icmp', type: 8 }, undefined, { totalLength: 24 }), verdict: XDP_DROP, counters: malformed },
];

describe('parser', () => {
  let dp: TestDataplane;
  before(() => (dp = TestDataplane.load()));
  after(() => dp.close());

  for (const f of fixtures) it(f.description, () => void check(dp, f));

  // Every strict prefix of a valid frame is truncated somewhere: in a header,
  // or in the payload (then the IP length exceeds the frame). Shorter than
  // Ethernet, BPF_PROG_TEST_RUN itself refuses the frame.
  const whole: [string, Uint8Array][] = [
    ['VLAN + IPv4 with options + TCP with options', frame(4, true, { ...syn, options: [{ kind: 'mss', value: 1460 }, { kind: 'wscale', shift: 7 }], payload: new Uint8Array(5) }, { vlans: [{ id: 7 }] }, { options: new Uint8Array(4).fill(1) })],
    ['QinQ + IPv6 with extension headers + UDP', frame(6, true, udp, { vlans: [{ id: 1, tpid: ETH_P_8021AD }, { id: 2 }] }, { extensions: [{ type: 'hop-by-hop' }, { type: 'destination', options: new Uint8Array(10) }] })],
    ['IPv4 ICMP echo request', frame(4, true, { proto: 'icmp', type: 8, id: 9, seq: 1, payload: new Uint8Array(3) })],
    ['IPv6 ICMPv6 echo request', frame(6, true, { proto: 'icmp', type: 128, id: 9, seq: 1 })],
  ];
  for (const [name, full] of whole) {
    it(`${name}: truncated at every length`, () => {
      check(dp, { description: `${name}, whole`, frame: full, verdict: XDP_DROP, counters: punted });
      dp.takePunts();
      for (let len = 14; len < full.length; len++)
        check(dp, { description: `${name}, first ${len} of ${full.length} bytes`, frame: full.subarray(0, len), verdict: XDP_DROP, counters: malformed });
    });
  }

  it('punts carry the offsets the parser found', () => {
    dp.takePunts();
    const cases: [Uint8Array, number, number][] = [
      [frame(4, true, syn), 14, 34],
      [frame(4, true, syn, { vlans: [{ id: 10 }] }, { options: new Uint8Array(8).fill(1) }), 18, 46],
      [frame(6, true, udp, { vlans: [{ id: 1, tpid: ETH_P_8021AD }, { id: 2 }] }, { extensions: [{ type: 'hop-by-hop' }, { type: 'routing', addresses: [CLIENT6, SERVER6] }] }), 22, 22 + 40 + 8 + 40],
    ];
    for (const [f, l3, l4] of cases) {
      assert.equal(dp.run(f).verdict, XDP_DROP);
      const [p] = dp.takePunts();
      assert.ok(p, `no punt for\n${showPacket(f)}`);
      assert.deepEqual([p.l3Off, p.l4Off], [l3, l4], showPacket(f));
    }
  });
});
