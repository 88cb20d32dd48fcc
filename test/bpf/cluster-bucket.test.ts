// The data plane's bucket (bpf/lib/bucket.h) and the controller's
// (control/src/cluster/bucket.ts) are one function: many random flows are
// punted through the real object and every punt record's bucket must equal
// bucketOf(key). State events carry the same bucket. Single-node mode:
// the bucket is filled whether or not the node is in a cluster.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FLOW_KEY_SIZE, flowKey, type FlowKey } from '../../control/src/bpf/codec.js';
import { bucketOf, SW_BUCKETS } from '../../control/src/cluster/bucket.js';
import { MapName } from '../../control/src/gen/layout.js';
import { buildFrame, type L4Spec } from '../../control/src/net/packet.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../control/src/net/protocols.js';
import { randomFlow, type RandomFlow } from '../unit/bucket-keys.js';
import { showPacket } from './fixture.js';
import { normalizedKey, TestDataplane, XDP_DROP, XDP_PASS } from './harness.js';

const FLOWS = 3000;
/** Punts drained this often: the 1 MiB test ring holds a few thousand small records. */
const BATCH = 500;

function bucketOfKey(key: FlowKey): number {
  const buf = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(buf, 0, key);
  return bucketOf(buf, 0);
}

/** The first packet of the flow: a SYN, a datagram, or an echo request. */
function firstPacket(f: RandomFlow): Uint8Array {
  let l4: L4Spec;
  if (f.proto === IPPROTO_TCP) l4 = { proto: 'tcp', sport: f.sport, dport: f.dport, seq: 1, flags: 'S', window: 1000 };
  else if (f.proto === IPPROTO_UDP) l4 = { proto: 'udp', sport: f.sport, dport: f.dport, payload: new Uint8Array(8) };
  else l4 = { proto: 'icmp', type: f.family === 4 ? 8 : 128, id: f.sport, seq: 1 };
  return buildFrame({ ip: { version: f.family, src: f.src, dst: f.dst }, l4 });
}

describe('cluster buckets: data plane and controller agree', () => {
  let dp: TestDataplane;
  before(() => (dp = TestDataplane.load()));
  after(() => dp.close());

  it('sw_bucket_owner has SW_BUCKETS entries', () => {
    assert.equal(dp.obj.mapMaxEntries(MapName.sw_bucket_owner), SW_BUCKETS);
  });

  it(`punt_meta.bucket equals bucketOf(key) for ${FLOWS} random TCP/UDP/ICMP flows over IPv4 and IPv6`, () => {
    const seen = new Set<number>();
    for (let start = 0; start < FLOWS; start += BATCH) {
      const flows: RandomFlow[] = [];
      for (let i = start; i < Math.min(FLOWS, start + BATCH); i++) {
        const f = randomFlow(i);
        const frame = firstPacket(f);
        const r = dp.run(frame);
        assert.equal(r.verdict, XDP_DROP, `flow ${i} was not punted\n${showPacket(frame)}`);
        flows.push(f);
      }
      const punts = dp.takePunts();
      assert.equal(punts.length, flows.length);
      punts.forEach((p, j) => {
        const f = flows[j]!;
        assert.deepEqual(p.key, normalizedKey({ family: f.family, proto: f.proto, src: f.src, sport: f.sport, dst: f.dst, dport: f.dport }).key);
        assert.equal(p.bucket, bucketOfKey(p.key), `flow ${start + j}: ${JSON.stringify(f)}`);
        seen.add(p.bucket);
      });
    }
    // enough flows to reach most buckets: the comparison covered the whole range
    assert.ok(seen.size > SW_BUCKETS * 0.9, `only ${seen.size} buckets seen`);
  });

  it('state_event.bucket equals bucketOf(key)', () => {
    for (let i = FLOWS; i < FLOWS + 50; i++) {
      const f = randomFlow(i);
      const { key, srcIsA } = normalizedKey({ family: f.family, proto: f.proto, src: f.src, sport: f.sport, dst: f.dst, dport: f.dport });
      dp.admit(key, srcIsA);
      assert.equal(dp.run(firstPacket(f)).verdict, XDP_PASS);
      const events = dp.takeEvents();
      assert.equal(events.length, 1);
      assert.equal(events[0]!.bucket, bucketOfKey(key));
    }
  });
});
