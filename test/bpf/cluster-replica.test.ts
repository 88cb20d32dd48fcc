// Replica entries (installed from a peer, TCP windows marked
// TCPW_F_UNTRUSTED) whose window edges lag far behind the stream, as after
// a failover: each direction re-learns its window from its next packet
// instead of being checked against stale edges, the other side's ack is
// not checked against an untrusted direction, state transitions still
// follow the table, and once re-learned the windows bind again. The same
// packets against the same entry without the flag are dropped.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FlowEntry, FlowKey, TcpWindow } from '../../control/src/bpf/codec.js';
import { FlowFlag, FlowState, TcpWindowFlag } from '../../control/src/gen/layout.js';
import { type TcpSpec } from '../../control/src/net/packet.js';
import { IPPROTO_TCP } from '../../control/src/net/protocols.js';
import { check } from './fixture.js';
import { normalizedKey, TestDataplane, XDP_DROP, XDP_PASS } from './harness.js';
import { CLIENT4, CLIENT6, frame, SERVER4, SERVER6, type Family } from './packets.js';

const CLIENT_ISN = 1000;
const SERVER_ISN = 900_000;
/** Where the stream really is: far beyond any window of the replica's edges. */
const CLIENT_NOW = CLIENT_ISN + 50_000_001;
const SERVER_NOW = SERVER_ISN + 70_000_001;
const SCALED_WINDOW = 502 << 7;
const { TCPW_F_WINDOW_SCALE, TCPW_F_SACK_PERM, TCPW_F_MAXACK_SET, TCPW_F_UNTRUSTED } = TcpWindowFlag;

const accepted = { CNT_HIT: 1, CNT_FWD_STACK: 1 };
const outOfWindow = { CNT_HIT: 1, CNT_DROP_OUT_OF_WINDOW: 1 };

let nextPort = 45000;

interface Conn {
  family: Family;
  port: number;
  key: FlowKey;
  srcIsA: boolean;
}

function newConn(family: Family): Conn {
  const port = nextPort++;
  const [src, dst] = family === 4 ? [CLIENT4, SERVER4] : [CLIENT6, SERVER6];
  return { family, port, ...normalizedKey({ family, proto: IPPROTO_TCP, src, sport: port, dst, dport: 80 }) };
}

function seg(c: Conn, fromClient: boolean, s: Omit<TcpSpec, 'proto' | 'sport' | 'dport'>): Uint8Array {
  const [sport, dport] = fromClient ? [c.port, 80] : [80, c.port];
  return frame(c.family, fromClient, { proto: 'tcp', sport, dport, window: 502, ...s });
}

/** A window whose edges are where the stream was right after the handshake (wscale 7 both ways). */
function staleWindow(isn: number, peerIsn: number, untrusted: boolean): TcpWindow {
  return {
    end: isn + 1,
    maxEnd: isn + 1 + SCALED_WINDOW,
    maxWin: SCALED_WINDOW,
    maxAck: peerIsn + 1,
    scale: 7,
    flags: TCPW_F_WINDOW_SCALE | TCPW_F_SACK_PERM | TCPW_F_MAXACK_SET | (untrusted ? TCPW_F_UNTRUSTED : 0),
  };
}

/** A window that matches the stream now. */
function currentWindow(now: number, peerNow: number): TcpWindow {
  return { end: now, maxEnd: now + SCALED_WINDOW, maxWin: SCALED_WINDOW, maxAck: peerNow, scale: 7, flags: TCPW_F_WINDOW_SCALE | TCPW_F_SACK_PERM | TCPW_F_MAXACK_SET };
}

/** Installs an established replica of the connection as the controller would. */
function installReplica(dp: TestDataplane, c: Conn, win: [TcpWindow, TcpWindow]): void {
  const entry: FlowEntry = {
    state: FlowState.FS_ESTABLISHED,
    flags: (c.srcIsA ? FlowFlag.FLOW_F_ORIG_A : 0) | FlowFlag.FLOW_F_REMOTE,
    helper: 0,
    lastDir: 0,
    ownerNode: 1,
    ruleId: 7,
    version: 3,
    win,
    lastSeenNs: 1n,
    packets: [10n, 10n],
    bytes: [1000n, 1000n],
    createdNs: 1n,
    origIfindex: 1,
  };
  dp.put(c.key, entry);
}

function windowFlags(dp: TestDataplane, c: Conn): [number, number] {
  const e = dp.entry(c.key);
  assert.ok(e, 'entry missing');
  return [e.win[0].flags, e.win[1].flags];
}

for (const family of [4, 6] as const) {
  describe(`replica windows over IPv${family}`, () => {
    let dp: TestDataplane;
    before(() => (dp = TestDataplane.load()));
    after(() => dp.close());
    const data = (n: number): Uint8Array => new Uint8Array(n).fill(0x62);

    it('untrusted directions re-learn from their next packets, then bind again', () => {
      const c = newConn(family);
      installReplica(dp, c, [staleWindow(CLIENT_ISN, SERVER_ISN, true), staleWindow(SERVER_ISN, CLIENT_ISN, true)]);
      check(dp, { description: 'client mid-stream segment re-learns', frame: seg(c, true, { seq: CLIENT_NOW, ack: SERVER_NOW, flags: 'PA', payload: data(100) }), verdict: XDP_PASS, counters: accepted });
      let [client, server] = windowFlags(dp, c);
      assert.equal(client & TCPW_F_UNTRUSTED, 0, 'client window still untrusted');
      assert.equal(server & TCPW_F_UNTRUSTED, TCPW_F_UNTRUSTED, 'server window re-learned from a client packet');
      // more of the client's flight before the server's ack: within the server's known window
      check(dp, { description: 'second client segment of the flight', frame: seg(c, true, { seq: CLIENT_NOW + 100, ack: SERVER_NOW, flags: 'PA', payload: data(100) }), verdict: XDP_PASS, counters: accepted });
      check(dp, { description: 'server mid-stream segment re-learns', frame: seg(c, false, { seq: SERVER_NOW, ack: CLIENT_NOW + 200, flags: 'PA', payload: data(200) }), verdict: XDP_PASS, counters: accepted });
      [client, server] = windowFlags(dp, c);
      assert.equal(server & TCPW_F_UNTRUSTED, 0, 'server window still untrusted');
      const e = dp.entry(c.key);
      assert.equal(e?.win[0].end, CLIENT_NOW + 200);
      assert.equal(e?.win[1].end, SERVER_NOW + 200);
      assert.equal(e?.state, FlowState.FS_ESTABLISHED);

      // trusted again: the usual checks apply in both directions
      check(dp, { description: 'next client segment', frame: seg(c, true, { seq: CLIENT_NOW + 200, ack: SERVER_NOW + 200, flags: 'PA', payload: data(100) }), verdict: XDP_PASS, counters: accepted });
      check(dp, { description: 'client segment far beyond the window', frame: seg(c, true, { seq: CLIENT_NOW + 10_000_000, ack: SERVER_NOW + 200, flags: 'PA', payload: data(100) }), verdict: XDP_DROP, counters: outOfWindow });
      check(dp, { description: 'client acking data never sent', frame: seg(c, true, { seq: CLIENT_NOW + 300, ack: SERVER_NOW + 10_000_000, flags: 'A' }), verdict: XDP_DROP, counters: outOfWindow });
      check(dp, { description: 'server segment far beyond the window', frame: seg(c, false, { seq: SERVER_NOW + 10_000_000, ack: CLIENT_NOW + 300, flags: 'PA', payload: data(100) }), verdict: XDP_DROP, counters: outOfWindow });
      assert.deepEqual(dp.takeEvents(), []);
    });

    it('without TCPW_F_UNTRUSTED the same mid-stream segments are dropped', () => {
      const c = newConn(family);
      installReplica(dp, c, [staleWindow(CLIENT_ISN, SERVER_ISN, false), staleWindow(SERVER_ISN, CLIENT_ISN, false)]);
      check(dp, { description: 'client mid-stream segment', frame: seg(c, true, { seq: CLIENT_NOW, ack: SERVER_NOW, flags: 'PA', payload: data(100) }), verdict: XDP_DROP, counters: outOfWindow });
      check(dp, { description: 'server mid-stream segment', frame: seg(c, false, { seq: SERVER_NOW, ack: CLIENT_NOW, flags: 'PA', payload: data(200) }), verdict: XDP_DROP, counters: outOfWindow });
      assert.equal(dp.entry(c.key)?.win[0].end, CLIENT_ISN + 1);
    });

    it("a trusted direction's ack is not checked against an untrusted peer until the peer re-learned", () => {
      const c = newConn(family);
      installReplica(dp, c, [currentWindow(CLIENT_NOW, SERVER_NOW), staleWindow(SERVER_ISN, CLIENT_ISN, true)]);
      check(dp, { description: "client segment acking the server's real position", frame: seg(c, true, { seq: CLIENT_NOW, ack: SERVER_NOW, flags: 'PA', payload: data(100) }), verdict: XDP_PASS, counters: accepted });
      check(dp, { description: 'server re-learns', frame: seg(c, false, { seq: SERVER_NOW, ack: CLIENT_NOW + 100, flags: 'A' }), verdict: XDP_PASS, counters: accepted });
      check(dp, { description: 'client acking data never sent', frame: seg(c, true, { seq: CLIENT_NOW + 100, ack: SERVER_NOW + 10_000_000, flags: 'A' }), verdict: XDP_DROP, counters: outOfWindow });

      const strict = newConn(family);
      installReplica(dp, strict, [currentWindow(CLIENT_NOW, SERVER_NOW), staleWindow(SERVER_ISN, CLIENT_ISN, false)]);
      check(dp, { description: 'the same segment against a trusted stale peer', frame: seg(strict, true, { seq: CLIENT_NOW, ack: SERVER_NOW, flags: 'PA', payload: data(100) }), verdict: XDP_DROP, counters: outOfWindow });
    });

    it('state transitions still follow the table: a FIN as the first packet closes', () => {
      const c = newConn(family);
      installReplica(dp, c, [staleWindow(CLIENT_ISN, SERVER_ISN, true), staleWindow(SERVER_ISN, CLIENT_ISN, true)]);
      check(dp, { description: 'client FIN mid-stream', frame: seg(c, true, { seq: CLIENT_NOW, ack: SERVER_NOW, flags: 'FA' }), verdict: XDP_PASS, counters: { ...accepted, CNT_STATE_EVENT: 1 } });
      const e = dp.entry(c.key);
      assert.equal(e?.state, FlowState.FS_FIN_WAIT);
      assert.equal(e?.version, 4);
      assert.equal(e?.win[0].end, CLIENT_NOW + 1);
      assert.equal((e?.win[0].flags ?? 0) & TCPW_F_UNTRUSTED, 0);
      const [ev] = dp.takeEvents();
      assert.deepEqual([ev?.oldState, ev?.newState], [FlowState.FS_ESTABLISHED, FlowState.FS_FIN_WAIT]);
      // a SYN is still not allowed mid-stream
      check(dp, { description: 'server SYN', frame: seg(c, false, { seq: SERVER_NOW, flags: 'S' }), verdict: XDP_DROP, counters: { CNT_HIT: 1, CNT_DROP_TCP_STATE: 1 } });
    });
  });
}
