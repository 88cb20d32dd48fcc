// The FTP helper's data-plane side through the real object: only the
// commands and replies that open a data connection leave the fast path
// (EV_HELPER, before tracking), a punted command holds the flow
// (FLOW_F_HELD: every later packet is punted behind it), and the release
// program tracks and forwards what the controller re-injects.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { flowEntry, type FlowEntry, type FlowKey } from '../../control/src/bpf/codec.js';
import { progTestRun } from '../../control/src/bpf/libbpf.js';
import { EventType, FlowFlag, FlowState, HelperId, ProgName } from '../../control/src/gen/layout.js';
import { type TcpSpec } from '../../control/src/net/packet.js';
import { IPPROTO_TCP } from '../../control/src/net/protocols.js';
import { check, showPacket } from './fixture.js';
import { LOOPBACK_IFINDEX, normalizedKey, TestDataplane, XDP_DROP, XDP_PASS } from './harness.js';
import { CLIENT4, CLIENT6, frame, SERVER4, SERVER6, type Family } from './packets.js';

const CLIENT_ISN = 1000;
const SERVER_ISN = 900_000;
const FTP_PORT = 21;
const fast = { CNT_HIT: 1, CNT_FWD_STACK: 1 };
const punted = { CNT_HIT: 1, CNT_PUNT_HELPER: 1 };
let nextPort = 42000;

interface Ctl {
  family: Family;
  port: number;
  key: FlowKey;
  /** next sequence numbers of client and server */
  cseq: number;
  sseq: number;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function seg(c: Ctl, fromClient: boolean, s: Omit<TcpSpec, 'proto' | 'sport' | 'dport'>): Uint8Array {
  const [sport, dport] = fromClient ? [c.port, FTP_PORT] : [FTP_PORT, c.port];
  return frame(c.family, fromClient, { proto: 'tcp', sport, dport, window: 502, ...s });
}

/** A data segment carrying `payload` at the connection's current sequence numbers (not advanced). */
function data(c: Ctl, fromClient: boolean, payload: string): Uint8Array {
  const [seq, ack] = fromClient ? [c.cseq, c.sseq] : [c.sseq, c.cseq];
  return seg(c, fromClient, { seq, ack, flags: 'PA', payload: text(payload) });
}

/** Moves the connection's sequence numbers past a segment that was forwarded. */
function sent(c: Ctl, fromClient: boolean, payload: string): void {
  if (fromClient) c.cseq += payload.length;
  else c.sseq += payload.length;
}

/** An established control connection admitted with `helper`, as the controller inserts it. */
function establish(dp: TestDataplane, family: Family, helper: number): Ctl {
  const port = nextPort++;
  const [src, dst] = family === 4 ? [CLIENT4, SERVER4] : [CLIENT6, SERVER6];
  const { key, srcIsA } = normalizedKey({ family, proto: IPPROTO_TCP, src, sport: port, dst, dport: FTP_PORT });
  const value = new Uint8Array(flowEntry.size);
  flowEntry.encodeNew(value, 0, { flags: srcIsA ? FlowFlag.FLOW_F_ORIG_A : 0, ruleId: 3, helper, ownerNode: 0, origIfindex: LOOPBACK_IFINDEX, createdNs: 1n });
  dp.put(key, flowEntry.decode(value, 0));
  const c: Ctl = { family, port, key, cseq: CLIENT_ISN + 1, sseq: SERVER_ISN + 1 };
  const changed = { ...fast, CNT_STATE_EVENT: 1 };
  check(dp, { description: 'SYN', frame: seg(c, true, { seq: CLIENT_ISN, flags: 'S', window: 64240 }), verdict: XDP_PASS, counters: changed });
  check(dp, { description: 'SYN/ACK', frame: seg(c, false, { seq: SERVER_ISN, ack: c.cseq, flags: 'SA', window: 65160 }), verdict: XDP_PASS, counters: changed });
  check(dp, { description: 'ACK', frame: seg(c, true, { seq: c.cseq, ack: c.sseq, flags: 'A' }), verdict: XDP_PASS, counters: changed });
  dp.takeEvents();
  return c;
}

function entryOf(dp: TestDataplane, c: Ctl): FlowEntry {
  const e = dp.entry(c.key);
  assert.ok(e, 'control connection entry missing');
  return e;
}

/** Runs a frame through xdp_syncwall_release, as the controller re-injects a released packet. */
function release(dp: TestDataplane, f: Uint8Array): { verdict: number; moved: Record<string, number> } {
  const before = dp.counters();
  const ctx = Buffer.alloc(24);
  ctx.writeUInt32LE(f.length, 4);
  ctx.writeUInt32LE(LOOPBACK_IFINDEX, 12);
  const r = progTestRun(dp.obj.programFd(ProgName.xdp_syncwall_release), { data: Uint8Array.from(f), dataOut: new Uint8Array(f.length + 256), ctx });
  const after = dp.counters();
  const moved: Record<string, number> = {};
  for (const [name, v] of Object.entries(after)) if (v !== (before[name] ?? 0)) moved[name] = v - (before[name] ?? 0);
  return { verdict: r.retval, moved };
}

/** Clears FLOW_F_HELD as the controller does once its queue is empty. */
function unhold(dp: TestDataplane, c: Ctl): void {
  const e = entryOf(dp, c);
  dp.put(c.key, { ...e, flags: e.flags & ~FlowFlag.FLOW_F_HELD });
}

function isHeld(dp: TestDataplane, c: Ctl): boolean {
  return (entryOf(dp, c).flags & FlowFlag.FLOW_F_HELD) !== 0;
}

for (const family of [4, 6] as const) {
  describe(`FTP control connection over IPv${family}`, () => {
    let dp: TestDataplane;
    before(() => (dp = TestDataplane.load()));
    after(() => dp.close());

    it('commands and replies that open no data connection stay on the fast path', () => {
      const c = establish(dp, family, HelperId.HELPER_FTP);
      const lines: [boolean, string][] = [
        [false, '220 (vsFTPd 3.0.3)\r\n'],
        [true, 'USER anonymous\r\n'],
        [false, '230 Login successful.\r\n'],
        [true, 'PASV\r\n'],
        [true, 'EPSV\r\n'],
        [true, 'PORTS 1,2\r\n'],
        [true, 'RETR PORT 1,2,3,4,5,6\r\n'],
        [true, '227 from the client is no reply\r\n'],
        [false, 'PORT from the server is no command\r\n'],
        [false, '2270 not a reply code\r\n'],
        [false, '228 \r\n'],
        [true, 'PORT'],
      ];
      for (const [fromClient, line] of lines) {
        check(dp, { description: `${fromClient ? 'client' : 'server'} sends ${JSON.stringify(line)}`, frame: data(c, fromClient, line), verdict: XDP_PASS, counters: fast });
        sent(c, fromClient, line);
      }
      assert.deepEqual(dp.takePunts(), []);
      assert.equal(isHeld(dp, c), false);
    });

    it('PORT, EPRT (either case), 227 and 229 are punted before tracking and hold the flow', () => {
      const triggers: [boolean, string][] = [
        [true, 'PORT 198,51,100,10,200,10\r\n'],
        [true, 'port 198,51,100,10,200,11\r\n'],
        [true, 'EPRT |2|2001:db8:1::10|51210|\r\n'],
        [true, 'ePrT |1|198.51.100.10|51211|\r\n'],
        [false, '227 Entering Passive Mode (203,0,113,20,117,48).\r\n'],
        [false, '229 Entering Extended Passive Mode (|||30001|)\r\n'],
      ];
      for (const [fromClient, line] of triggers) {
        const c = establish(dp, family, HelperId.HELPER_FTP);
        const before = entryOf(dp, c);
        const f = data(c, fromClient, line);
        check(dp, { description: `trigger ${JSON.stringify(line)}`, frame: f, verdict: XDP_DROP, counters: punted });
        const [p, ...rest] = dp.takePunts();
        assert.ok(p, `no punt for ${line}\n${showPacket(f)}`);
        assert.equal(rest.length, 0);
        assert.equal(p.type, EventType.EV_HELPER);
        assert.deepEqual(p.key, c.key);
        assert.deepEqual(p.frame, f);
        const held = entryOf(dp, c);
        // nothing tracked: the window and counters are those before the command
        assert.deepEqual({ ...held, flags: before.flags }, before);
        assert.equal(held.flags, before.flags | FlowFlag.FLOW_F_HELD);
      }
    });

    it('while held, every packet of the flow is punted behind the command; released packets are tracked', () => {
      const c = establish(dp, family, HelperId.HELPER_FTP);
      const port = 'PORT 198,51,100,10,200,12\r\n';
      const command = data(c, true, port);
      check(dp, { description: 'PORT', frame: command, verdict: XDP_DROP, counters: punted });
      const windowBefore = entryOf(dp, c).win;
      sent(c, true, port);
      const behind = [
        seg(c, false, { seq: c.sseq, ack: c.cseq, flags: 'A' }),
        data(c, false, '200 PORT command successful.\r\n'),
        data(c, true, 'NOOP\r\n'),
      ];
      for (const f of behind) check(dp, { description: 'packet behind the held command', frame: f, verdict: XDP_DROP, counters: punted });
      const punts = dp.takePunts();
      assert.equal(punts.length, 1 + behind.length);
      assert.ok(punts.every((p) => p.type === EventType.EV_HELPER));
      assert.deepEqual(entryOf(dp, c).win, windowBefore, 'held packets are not tracked');

      // The controller re-injects the queue in order through the release program ...
      for (const f of [command, ...behind]) {
        const r = release(dp, f);
        assert.equal(r.verdict, XDP_PASS, `released packet: ${JSON.stringify(r.moved)}\n${showPacket(f)}`);
        assert.deepEqual(r.moved, { CNT_RX: 1, ...fast });
      }
      assert.deepEqual(dp.takePunts(), []);
      const e = entryOf(dp, c);
      assert.equal(e.win[0].end, c.cseq + 'NOOP\r\n'.length);
      assert.equal(e.state, FlowState.FS_ESTABLISHED);
      // ... and clears the flag: the flow is back on the fast path.
      unhold(dp, c);
      sent(c, false, '200 PORT command successful.\r\n');
      sent(c, true, 'NOOP\r\n');
      check(dp, { description: 'after the release', frame: data(c, false, '200 NOOP ok.\r\n'), verdict: XDP_PASS, counters: fast });
    });

    it('the release program never punts a command', () => {
      const c = establish(dp, family, HelperId.HELPER_FTP);
      const r = release(dp, data(c, false, '229 Entering Extended Passive Mode (|||30002|)\r\n'));
      assert.equal(r.verdict, XDP_PASS);
      assert.deepEqual(r.moved, { CNT_RX: 1, ...fast });
      assert.equal(isHeld(dp, c), false);
      assert.deepEqual(dp.takePunts(), []);
    });

    it('a flow without the helper forwards PORT like any data', () => {
      const c = establish(dp, family, HelperId.HELPER_NONE);
      check(dp, { description: 'PORT without helper', frame: data(c, true, 'PORT 198,51,100,10,200,13\r\n'), verdict: XDP_PASS, counters: fast });
      assert.deepEqual(dp.takePunts(), []);
    });
  });
}

describe('a command that cannot be punted', () => {
  let dp: TestDataplane;
  // an empty token bucket: no punt goes through
  before(() => (dp = TestDataplane.load({ puntRate: 0n, puntBurst: 0n })));
  after(() => dp.close());

  it('is dropped and holds nothing (the client retransmits it)', () => {
    const c = establish(dp, 4, HelperId.HELPER_FTP);
    check(dp, { description: 'PORT, no punt token', frame: data(c, true, 'PORT 198,51,100,10,200,14\r\n'), verdict: XDP_DROP, counters: { CNT_HIT: 1, CNT_DROP_PUNT_LIMIT: 1 } });
    assert.equal(isHeld(dp, c), false);
    check(dp, { description: 'the next packet is forwarded', frame: data(c, false, '200 ok\r\n'), verdict: XDP_PASS, counters: fast });
  });
});
