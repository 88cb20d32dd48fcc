// TCP tracking through the real object: the controller's admission (punt,
// blank FS_NONE entry, re-run of the first packet), handshake, data, FIN
// teardown, RST, and invalid segments that must be dropped without touching
// the entry.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FlowEntry, FlowKey } from '../../control/src/bpf/codec.js';
import { FlowState, TcpWindowFlag } from '../../control/src/gen/layout.js';
import { type TcpOption, type TcpSpec } from '../../control/src/net/packet.js';
import { IPPROTO_TCP } from '../../control/src/net/protocols.js';
import { check } from './fixture.js';
import { normalizedKey, TestDataplane, XDP_DROP, XDP_PASS } from './harness.js';
import { CLIENT4, CLIENT6, frame, SERVER4, SERVER6, type Family } from './packets.js';

const CLIENT_ISN = 1000;
const SERVER_ISN = 900_000;
let nextPort = 40000;
const DPORT = 80;
const SYN_OPTIONS: TcpOption[] = [{ kind: 'mss', value: 1460 }, { kind: 'sack-permitted' }, { kind: 'wscale', shift: 7 }];
const accepted = { CNT_HIT: 1, CNT_FWD_STACK: 1 };
const changed = { ...accepted, CNT_STATE_EVENT: 1 };

/** One test connection: its own client port, so tests sharing a table do not meet. */
interface Conn {
  family: Family;
  port: number;
}

function newConn(family: Family): Conn {
  return { family, port: nextPort++ };
}

/** A segment of the test connection; `fromClient` picks the direction. */
function seg(c: Conn, fromClient: boolean, s: Omit<TcpSpec, 'proto' | 'sport' | 'dport'>): Uint8Array {
  const [sport, dport] = fromClient ? [c.port, DPORT] : [DPORT, c.port];
  return frame(c.family, fromClient, { proto: 'tcp', sport, dport, window: 502, ...s });
}

function flowKeyOf(c: Conn): { key: FlowKey; srcIsA: boolean } {
  const [src, dst] = c.family === 4 ? [CLIENT4, SERVER4] : [CLIENT6, SERVER6];
  return normalizedKey({ family: c.family, proto: IPPROTO_TCP, src, sport: c.port, dst, dport: DPORT });
}

/** Punt the SYN, admit it as the controller does, re-run it: returns the key. */
function open(dp: TestDataplane, c: Conn): FlowKey {
  const synFrame = seg(c, true, { seq: CLIENT_ISN, flags: 'S', window: 64240, options: SYN_OPTIONS });
  check(dp, { description: 'SYN without entry is punted', frame: synFrame, verdict: XDP_DROP, counters: { CNT_PUNT_NEW: 1 } });
  const [punt] = dp.takePunts();
  const { key, srcIsA } = flowKeyOf(c);
  assert.ok(punt);
  assert.deepEqual(punt.key, key);
  assert.equal(punt.srcIsA, srcIsA);
  dp.admit(punt.key, punt.srcIsA);
  check(dp, { description: 're-run SYN finds FS_NONE and opens the flow', frame: synFrame, verdict: XDP_PASS, counters: changed });
  return key;
}

function handshake(dp: TestDataplane, c: Conn): FlowKey {
  const key = open(dp, c);
  check(dp, {
    description: 'SYN/ACK',
    frame: seg(c, false, { seq: SERVER_ISN, ack: CLIENT_ISN + 1, flags: 'SA', window: 65160, options: SYN_OPTIONS }),
    verdict: XDP_PASS,
    counters: changed,
  });
  check(dp, { description: 'ACK', frame: seg(c, true, { seq: CLIENT_ISN + 1, ack: SERVER_ISN + 1, flags: 'A' }), verdict: XDP_PASS, counters: changed });
  return key;
}

function mustEntry(dp: TestDataplane, key: FlowKey): FlowEntry {
  const e = dp.entry(key);
  assert.ok(e, 'entry missing');
  return e;
}

for (const family of [4, 6] as const) {
  describe(`TCP over IPv${family}`, () => {
    let dp: TestDataplane;
    before(() => (dp = TestDataplane.load()));
    after(() => dp.close());

    it('handshake, data both ways, FIN teardown, reopen from TIME_WAIT', () => {
      const c = newConn(family);
      const key = handshake(dp, c);
      let e = mustEntry(dp, key);
      assert.equal(e.state, FlowState.FS_ESTABLISHED);
      assert.equal(e.win[0].scale, 7);
      assert.equal(e.win[1].scale, 7);
      assert.equal(e.win[0].flags & TcpWindowFlag.TCPW_F_SACK_PERM, TcpWindowFlag.TCPW_F_SACK_PERM);
      assert.equal(e.ruleId, 7);

      const payload = new Uint8Array(100).fill(0x61);
      check(dp, { description: 'client data', frame: seg(c, true, { seq: CLIENT_ISN + 1, ack: SERVER_ISN + 1, flags: 'PA', payload }), verdict: XDP_PASS, counters: accepted });
      check(dp, { description: 'server data', frame: seg(c, false, { seq: SERVER_ISN + 1, ack: CLIENT_ISN + 101, flags: 'PA', payload: new Uint8Array(200) }), verdict: XDP_PASS, counters: accepted });
      e = mustEntry(dp, key);
      assert.deepEqual(e.packets, [3n, 2n]);
      assert.equal(e.win[0].end, CLIENT_ISN + 101);
      assert.equal(e.win[1].end, SERVER_ISN + 201);
      assert.equal(e.win[0].maxAck, SERVER_ISN + 1);

      check(dp, { description: 'client FIN', frame: seg(c, true, { seq: CLIENT_ISN + 101, ack: SERVER_ISN + 201, flags: 'FA' }), verdict: XDP_PASS, counters: changed });
      assert.equal(mustEntry(dp, key).state, FlowState.FS_FIN_WAIT);
      assert.ok(mustEntry(dp, key).win[0].flags & TcpWindowFlag.TCPW_F_CLOSE_INIT);
      check(dp, { description: 'server ACKs the FIN', frame: seg(c, false, { seq: SERVER_ISN + 201, ack: CLIENT_ISN + 102, flags: 'A' }), verdict: XDP_PASS, counters: changed });
      check(dp, { description: 'server FIN', frame: seg(c, false, { seq: SERVER_ISN + 201, ack: CLIENT_ISN + 102, flags: 'FA' }), verdict: XDP_PASS, counters: changed });
      check(dp, { description: 'last ACK', frame: seg(c, true, { seq: CLIENT_ISN + 102, ack: SERVER_ISN + 202, flags: 'A' }), verdict: XDP_PASS, counters: changed });
      e = mustEntry(dp, key);
      assert.equal(e.state, FlowState.FS_TIME_WAIT);

      const events = dp.takeEvents();
      assert.deepEqual(
        events.map((ev) => [ev.oldState, ev.newState, ev.version]),
        [
          [FlowState.FS_NONE, FlowState.FS_SYN_SENT, 1],
          [FlowState.FS_SYN_SENT, FlowState.FS_SYN_RECV, 2],
          [FlowState.FS_SYN_RECV, FlowState.FS_ESTABLISHED, 3],
          [FlowState.FS_ESTABLISHED, FlowState.FS_FIN_WAIT, 4],
          [FlowState.FS_FIN_WAIT, FlowState.FS_CLOSE_WAIT, 5],
          [FlowState.FS_CLOSE_WAIT, FlowState.FS_LAST_ACK, 6],
          [FlowState.FS_LAST_ACK, FlowState.FS_TIME_WAIT, 7],
        ],
      );
      for (const ev of events) {
        assert.deepEqual(ev.key, key);
        assert.equal(ev.ruleId, 7);
      }
      assert.equal(e.version, 7);
      assert.equal(e.lastDir, 0);

      check(dp, { description: 'a new SYN reopens the TIME_WAIT flow', frame: seg(c, true, { seq: CLIENT_ISN + 500_000, flags: 'S' }), verdict: XDP_PASS, counters: changed });
      e = mustEntry(dp, key);
      assert.equal(e.state, FlowState.FS_SYN_SENT);
      assert.equal(e.win[0].end, CLIENT_ISN + 500_001);
      assert.equal(e.win[1].maxWin, 0);
      dp.takeEvents();
    });

    it('in-window RST closes an established flow', () => {
      const c = newConn(family);
      const key = handshake(dp, c);
      check(dp, { description: 'server RST', frame: seg(c, false, { seq: SERVER_ISN + 1, flags: 'R' }), verdict: XDP_PASS, counters: changed });
      assert.equal(mustEntry(dp, key).state, FlowState.FS_CLOSE);
      dp.takeEvents();
    });

    it('RST+ACK answering the SYN closes the flow; one with a wrong ack is dropped', () => {
      const c = newConn(family);
      const key = open(dp, c);
      const before = mustEntry(dp, key);
      check(dp, { description: 'RST+ACK acking nothing we sent', frame: seg(c, false, { seq: 0, ack: CLIENT_ISN + 70_000, flags: 'RA' }), verdict: XDP_DROP, counters: { CNT_HIT: 1, CNT_DROP_RST_INVALID: 1 } });
      assert.deepEqual(mustEntry(dp, key), before);
      check(dp, { description: 'RST+ACK answering the SYN', frame: seg(c, false, { seq: 0, ack: CLIENT_ISN + 1, flags: 'RA' }), verdict: XDP_PASS, counters: changed });
      assert.equal(mustEntry(dp, key).state, FlowState.FS_CLOSE);
      dp.takeEvents();
    });

    it('invalid segments are dropped and leave the entry untouched', () => {
      const c = newConn(family);
      const key = handshake(dp, c);
      const before = mustEntry(dp, key);
      const invalid: [string, Uint8Array, string][] = [
        ['data far beyond the receive window', seg(c, true, { seq: CLIENT_ISN + 1 + 50_000_000, ack: SERVER_ISN + 1, flags: 'PA', payload: new Uint8Array(10) }), 'CNT_DROP_OUT_OF_WINDOW'],
        ['data long acked (below the window)', seg(c, true, { seq: CLIENT_ISN - 5_000_000, ack: SERVER_ISN + 1, flags: 'PA', payload: new Uint8Array(10) }), 'CNT_DROP_OUT_OF_WINDOW'],
        ['ack of data never sent', seg(c, true, { seq: CLIENT_ISN + 1, ack: SERVER_ISN + 1_000_000, flags: 'A' }), 'CNT_DROP_OUT_OF_WINDOW'],
        ['RST outside the window', seg(c, false, { seq: SERVER_ISN + 100_000_000, flags: 'R' }), 'CNT_DROP_RST_INVALID'],
        ['RST below the acknowledged sequence', seg(c, false, { seq: SERVER_ISN - 10, flags: 'R' }), 'CNT_DROP_RST_INVALID'],
        ['SYN/ACK from the client', seg(c, true, { seq: CLIENT_ISN, ack: SERVER_ISN + 1, flags: 'SA' }), 'CNT_DROP_TCP_STATE'],
        ['SYN from the server', seg(c, false, { seq: SERVER_ISN, flags: 'S' }), 'CNT_DROP_TCP_STATE'],
        ['URG alone', seg(c, true, { seq: CLIENT_ISN + 1, flags: 'U' }), 'CNT_DROP_TCP_FLAGS'],
      ];
      for (const [description, f, reason] of invalid) {
        const counters: Record<string, number> = { [reason]: 1 };
        if (reason !== 'CNT_DROP_TCP_FLAGS') counters.CNT_HIT = 1;
        check(dp, { description, frame: f, verdict: XDP_DROP, counters });
        assert.deepEqual(mustEntry(dp, key), before, `${description} changed the entry`);
      }
      assert.deepEqual(dp.takeEvents().length, 3);
    });

    it('an admitted flow starts only with its SYN', () => {
      const c = newConn(family);
      const { key, srcIsA } = flowKeyOf(c);
      dp.admit(key, srcIsA);
      check(dp, { description: 'ACK on a FS_NONE entry', frame: seg(c, true, { seq: CLIENT_ISN + 1, ack: SERVER_ISN + 1, flags: 'A' }), verdict: XDP_DROP, counters: { CNT_HIT: 1, CNT_DROP_TCP_STATE: 1 } });
      check(dp, { description: 'a bare ACK on the FS_NONE entry', frame: seg(c, true, { seq: 1, ack: 1, flags: 'A' }), verdict: XDP_DROP, counters: { CNT_HIT: 1, CNT_DROP_TCP_STATE: 1 } });
      assert.equal(mustEntry(dp, key).state, FlowState.FS_NONE);
      assert.deepEqual(dp.takeEvents(), []);
    });

    it('segments of an unknown flow that cannot open one are dropped', () => {
      const other = (flags: string): Uint8Array => frame(family, true, { proto: 'tcp', sport: 41000, dport: 443, seq: 5, ack: 9, flags });
      for (const flags of ['A', 'PA', 'FA', 'R', 'SA'])
        check(dp, { description: `${flags} without entry`, frame: other(flags), verdict: XDP_DROP, counters: { CNT_DROP_NO_ENTRY: 1 } });
    });
  });
}
