// progTestRunInPlace (the re-injection path's BPF_PROG_TEST_RUN with native
// buffers allocated once) against the real object: the program sees exactly
// the frame and ingress interface of each call, also when frames of
// different lengths follow each other, and FrameInjector's live-frames run
// reaches the same program. Needs root.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FrameInjector } from '../../control/src/bpf/inject.js';
import { progTestRun, progTestRunInPlace } from '../../control/src/bpf/libbpf.js';
import { ProgName } from '../../control/src/gen/layout.js';
import { IPPROTO_TCP } from '../../control/src/net/protocols.js';
import { LOOPBACK_IFINDEX, normalizedKey, TestDataplane, XDP_DROP, XDP_PASS } from './harness.js';
import { CLIENT4, frame, SERVER4 } from './packets.js';

/** struct xdp_md with data_end (the frame's length) and ingress_ifindex set. */
function xdpMd(frameLen: number, ifindex: number): Uint8Array {
  const ctx = new DataView(new ArrayBuffer(24));
  ctx.setUint32(4, frameLen, true);
  ctx.setUint32(12, ifindex, true);
  return new Uint8Array(ctx.buffer);
}

const syn = (sport: number, payload = 0): Uint8Array =>
  frame(4, true, { proto: 'tcp', sport, dport: 80, seq: 1000, flags: 'S', window: 64240, payload: new Uint8Array(payload) });

let dp: TestDataplane;
before(() => {
  dp = TestDataplane.load();
});
after(() => dp.close());

describe('progTestRunInPlace', () => {
  it('returns the verdict progTestRun returns, and the program sees the whole frame', () => {
    const long = syn(41000, 600);
    const short = syn(41001);
    assert.equal(progTestRunInPlace(dp.progFd, long, xdpMd(long.length, LOOPBACK_IFINDEX), 0), XDP_DROP);
    assert.equal(progTestRunInPlace(dp.progFd, short, xdpMd(short.length, LOOPBACK_IFINDEX), 0), XDP_DROP);
    assert.equal(progTestRun(dp.progFd, { data: short, ctx: xdpMd(short.length, LOOPBACK_IFINDEX) }).retval, XDP_DROP);
    const punts = dp.takePunts();
    assert.deepEqual(punts.map((p) => p.pktLen), [long.length, short.length, short.length]);
    assert.deepEqual(punts[1]!.frame, short.subarray(0, punts[1]!.capLen));
    assert.deepEqual(punts.map((p) => p.key.portA), [41000, 41001, 41001].map((sport) => normalizedKey({ family: 4, proto: IPPROTO_TCP, src: CLIENT4, sport, dst: SERVER4, dport: 80 }).key.portA));
  });

  it('passes the ingress interface of each call', () => {
    const f = syn(41002);
    progTestRunInPlace(dp.progFd, f, xdpMd(f.length, LOOPBACK_IFINDEX), 0);
    assert.deepEqual(dp.takePunts().map((p) => p.ifindex), [LOOPBACK_IFINDEX]);
  });

  it('tracks an admitted flow as the program does for any packet', () => {
    const { key, srcIsA } = normalizedKey({ family: 4, proto: IPPROTO_TCP, src: CLIENT4, sport: 41003, dst: SERVER4, dport: 80 });
    dp.admit(key, srcIsA);
    const f = syn(41003);
    assert.equal(progTestRunInPlace(dp.progFd, f, xdpMd(f.length, LOOPBACK_IFINDEX), 0), XDP_PASS);
    assert.notEqual(dp.entry(key)?.state, 0);
  });
});

describe('FrameInjector.reinject', () => {
  it('runs the main program on the frame as received on the given interface (live frames)', () => {
    const injector = new FrameInjector(dp.progFd, dp.obj.programFd(ProgName.xdp_tx_out));
    // No entry: the program punts it and drops it, so nothing reaches a stack.
    const f = syn(41004, 40);
    injector.reinject(f, LOOPBACK_IFINDEX);
    const punts = dp.takePunts();
    assert.equal(punts.length, 1);
    assert.equal(punts[0]!.ifindex, LOOPBACK_IFINDEX);
    assert.deepEqual(punts[0]!.frame, f.subarray(0, punts[0]!.capLen));
  });
});
