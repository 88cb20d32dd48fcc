// The body of forward.test.ts, run inside the namespace it creates (the FIB
// that bpf_fib_lookup consults is the test process's own namespace, so this
// runs as a child under `ip netns exec`). Exits non-zero with the failed
// fixture on stderr.
//
// Topology (one namespace): veth `in` (198.51.100.1/24, 2001:db8:1::1/64) is
// the ingress, veth `out` (203.0.113.1/24, 2001:db8:2::1/64, MTU 1300) the
// egress with permanent neighbours for the server; forwarding is on.
import assert from 'node:assert/strict';
import { ifNameToIndex } from '../../control/src/bpf/libbpf.js';
import { DpConfigFlag } from '../../control/src/gen/layout.js';
import { buildFrame, type L4Spec } from '../../control/src/net/packet.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../control/src/net/protocols.js';
import { check } from './fixture.js';
import { normalizedKey, TestDataplane, XDP_PASS, XDP_REDIRECT } from './harness.js';
import { IN_DEV, NO_NEIGH4, NO_NEIGH6, OUT_MAC, OUT_MTU, ROUTER4, ROUTER6, SERVER_MAC } from './forward-topology.js';
import { CLIENT4, CLIENT6, SERVER4, SERVER6, type Family } from './packets.js';

function main(): void {
  const inIndex = ifNameToIndex(IN_DEV);
  const dp = TestDataplane.load({ flags: DpConfigFlag.DPF_FAST_FORWARD });
  try {
    for (const family of [4, 6] as const) probeFamily(dp, family, inIndex);
  } finally {
    dp.close();
  }
}

function probeFamily(dp: TestDataplane, family: Family, inIndex: number): void {
  const [client, server] = family === 4 ? [CLIENT4, SERVER4] : [CLIENT6, SERVER6];
  const [noNeigh, router] = family === 4 ? [NO_NEIGH4, ROUTER4] : [NO_NEIGH6, ROUTER6];
  const ttlField = family === 4 ? 'ttl' : 'hopLimit';
  const udp = (sport: number, size = 32): L4Spec => ({ proto: 'udp', sport, dport: 53, payload: new Uint8Array(size).fill(7) });
  const packet = (dst: string, l4: L4Spec, ttl = 64, vlan = false): Uint8Array =>
    buildFrame({ eth: vlan ? { vlans: [{ id: 5 }] } : undefined, ip: { version: family, src: client, dst, [ttlField]: ttl } as never, l4 });
  const admit = (dst: string, sport: number, proto = IPPROTO_UDP, dport = 53): void => {
    const { key, srcIsA } = normalizedKey({ family, proto, src: client, sport, dst, dport });
    dp.admit(key, srcIsA);
  };
  const opened = { CNT_HIT: 1, CNT_STATE_EVENT: 1 };

  admit(server, 1001);
  const fast = check(dp, { description: `IPv${family}: accepted packet is redirected`, frame: packet(server, udp(1001)), ifindex: inIndex, verdict: XDP_REDIRECT, counters: { ...opened, CNT_FWD_FAST: 1 } });
  // the same packet one hop later: MACs of the egress link, TTL/hop limit one less, checksums right
  const expected = buildFrame({ eth: { src: OUT_MAC, dst: SERVER_MAC }, ip: { version: family, src: client, dst: server, [ttlField]: 63 } as never, l4: udp(1001) });
  assert.deepEqual(fast.out, expected, `IPv${family}: forwarded frame differs`);

  admit(server, 1002);
  check(dp, { description: `IPv${family}: hop limit 1 goes to the stack`, frame: packet(server, udp(1002), 1), ifindex: inIndex, verdict: XDP_PASS, counters: { ...opened, CNT_PASS_TTL: 1 } });

  admit(noNeigh, 1003);
  check(dp, { description: `IPv${family}: no neighbour yet: the stack forwards`, frame: packet(noNeigh, udp(1003)), ifindex: inIndex, verdict: XDP_PASS, counters: { ...opened, CNT_FWD_STACK: 1 } });

  admit(server, 1004);
  check(dp, { description: `IPv${family}: larger than the egress MTU: the stack sends packet-too-big`, frame: packet(server, udp(1004, OUT_MTU)), ifindex: inIndex, verdict: XDP_PASS, counters: { ...opened, CNT_FWD_STACK: 1 } });

  admit(server, 1005);
  check(dp, { description: `IPv${family}: VLAN-tagged frames are left to the stack`, frame: packet(server, udp(1005), 64, true), ifindex: inIndex, verdict: XDP_PASS, counters: { ...opened, CNT_FWD_STACK: 1 } });

  check(dp, { description: `IPv${family}: new UDP to the router itself passes untracked`, frame: packet(router, udp(1006)), ifindex: inIndex, verdict: XDP_PASS, counters: { CNT_PASS_LOCAL: 1 } });
  check(dp, { description: `IPv${family}: TCP ACK to the router itself passes untracked`, frame: packet(router, { proto: 'tcp', sport: 1007, dport: 22, seq: 1, ack: 1, flags: 'A' }), ifindex: inIndex, verdict: XDP_PASS, counters: { CNT_PASS_LOCAL: 1 } });

  admit(router, 1008, IPPROTO_TCP, 22);
  check(dp, { description: `IPv${family}: a tracked flow to the router itself`, frame: packet(router, { proto: 'tcp', sport: 1008, dport: 22, seq: 1, flags: 'S' }), ifindex: inIndex, verdict: XDP_PASS, counters: { ...opened, CNT_PASS_LOCAL: 1 } });
  dp.takeEvents();
}

try {
  main();
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
