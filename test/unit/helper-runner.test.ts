// The controller's helper path without a data plane: EV_HELPER records built
// from real frames go through the FTP helper; expectations are created,
// published, used by a first packet, removed with their control connection
// or by a peer, and expire; commands are held until the peers ack or the
// hold times out, with the flow's later packets released behind them in
// order; without a cluster or with common sync off nothing is held.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLOW_KEY_SIZE, flowEntry, flowKey, type FlowKey } from '../../control/src/bpf/codec.js';
import type { ExpectationRecord, SyncPayload } from '../../control/src/cluster/types.js';
import { EventType, FlowFlag, HelperId, PuntMetaLayout, PuntSmallLayout } from '../../control/src/gen/layout.js';
import { ClusterExpectationSync, type CommonStateChannel, type ExpectationSync, type Publication } from '../../control/src/helpers/expectation-sync.js';
import { FtpHelper } from '../../control/src/helpers/ftp-helper.js';
import { HelperRegistry } from '../../control/src/helpers/helper.js';
import { HelperRunner } from '../../control/src/helpers/helper-runner.js';
import { createLogger } from '../../control/src/log.js';
import { addressBytes } from '../../control/src/net/address.js';
import { buildFrame } from '../../control/src/net/packet.js';

const CLIENT = '10.1.0.2';
const SERVER = '10.2.0.2';
const CPORT = 40000;
const TTL_MS = 60_000;
const DATA = PuntSmallLayout.fields.data.offset;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The control connection client:CPORT -> server:21, normalized (the client's address is smaller: it is A). */
const CONTROL: FlowKey = { family: 4, proto: 6, addrA: addressBytes(CLIENT), addrB: addressBytes(SERVER), portA: CPORT, portB: 21 };

/** An EV_HELPER record of the control connection carrying `payload`. */
function helperRecord(fromClient: boolean, payload: string, tsNs = 1n): Uint8Array {
  const [src, dst, sport, dport] = fromClient ? [CLIENT, SERVER, CPORT, 21] : [SERVER, CLIENT, 21, CPORT];
  const frame = buildFrame({ ip: { version: 4, src, dst }, l4: { proto: 'tcp', sport, dport, seq: 1, ack: 1, flags: 'PA', payload: text(payload) } });
  const f = PuntMetaLayout.fields;
  const buf = new Uint8Array(DATA + frame.length);
  const view = new DataView(buf.buffer);
  view.setUint16(f.type.offset, EventType.EV_HELPER, true);
  buf[f.src_is_a.offset] = fromClient ? 1 : 0;
  view.setUint32(f.ifindex.offset, fromClient ? 3 : 4, true);
  view.setBigUint64(f.ts_ns.offset, tsNs, true);
  view.setUint16(f.cap_len.offset, frame.length, true);
  view.setUint16(f.l3_off.offset, 14, true);
  view.setUint16(f.l4_off.offset, 34, true);
  flowKey.write(buf, f.key.offset, CONTROL);
  buf.set(frame, DATA);
  return buf;
}

/** A punt-style key buffer of a first packet src:sport -> dst:dport (TCP, IPv4) and its srcIsA. */
function firstPacket(src: string, sport: number, dst: string, dport: number): { buf: Uint8Array; srcIsA: boolean } {
  const s = addressBytes(src);
  const d = addressBytes(dst);
  const srcIsA = s.join('.') < d.join('.') || (src === dst && sport <= dport);
  const buf = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(buf, 0, srcIsA ? { family: 4, proto: 6, addrA: s, addrB: d, portA: sport, portB: dport } : { family: 4, proto: 6, addrA: d, addrB: s, portA: dport, portB: sport });
  return { buf, srcIsA };
}

/** A sync whose acks the test resolves by hand. */
class ManualSync implements ExpectationSync {
  kind: Publication['kind'] = 'sent';
  readonly published: { add: ExpectationRecord[]; remove: ExpectationRecord[] }[] = [];
  readonly waits: { timeoutMs: number; resolve(acked: boolean): void }[] = [];

  publish(add: readonly ExpectationRecord[], remove: readonly ExpectationRecord[]): Publication {
    this.published.push({ add: [...add], remove: [...remove] });
    if (this.kind !== 'sent') return { kind: this.kind };
    return { kind: 'sent', acked: (timeoutMs) => new Promise((resolve) => this.waits.push({ timeoutMs, resolve })) };
  }
}

function harness(opts: { sync?: ExpectationSync; hasEntry?: boolean } = {}) {
  const released: { payload: string; ifindex: number }[] = [];
  const unheld: string[] = [];
  let nowMs = 1000;
  let ns = 5_000_000n;
  const entry = new Uint8Array(flowEntry.size);
  flowEntry.encodeNew(entry, 0, { flags: FlowFlag.FLOW_F_ORIG_A | FlowFlag.FLOW_F_HELD, ruleId: 1, helper: HelperId.HELPER_FTP, ownerNode: 0, origIfindex: 3, createdNs: 1n });
  const runner = new HelperRunner({
    lookupEntry: (_key, value) => {
      value.set(entry);
      return opts.hasEntry ?? true;
    },
    release: (frame, ifindex) => released.push({ payload: new TextDecoder().decode(frame.subarray(54)), ifindex }),
    unhold: (key) => unheld.push(Buffer.from(key).toString('hex')),
    registry: new HelperRegistry([new FtpHelper()]),
    settings: { holdTimeoutMs: 50, expectationTtlMs: TTL_MS },
    log: createLogger('error'),
    monotonicNs: () => ns,
    nowMs: () => nowMs,
  });
  if (opts.sync) runner.attachSync(opts.sync);
  const counter = (name: string): number => Number(runner.counters()[name] ?? -1n);
  return {
    runner,
    released,
    unheld,
    counter,
    punt: (fromClient: boolean, payload: string, tsNs?: bigint) => runner.onPunt(helperRecord(fromClient, payload, tsNs), 0),
    advanceMs: (ms: number) => {
      nowMs += ms;
      ns += BigInt(ms) * 1_000_000n;
    },
  };
}

const PORT_CMD = 'PORT 10,1,0,2,156,64\r\n'; // client port 40000 + 0 = 156*256+64 = 40000
const DATA_PORT = 156 * 256 + 64;
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('helper runner', () => {
  it('single node: the PORT creates an expectation, is released at once, and the server may connect back once', () => {
    const h = harness();
    h.punt(true, PORT_CMD);
    assert.deepEqual(h.released, [{ payload: PORT_CMD, ifindex: 3 }]);
    assert.equal(h.unheld.length, 1, 'the flow is unheld once its queue is empty');
    assert.equal(h.counter('expectations_created'), 1);
    assert.equal(h.counter('helper_hold_skipped_single_node'), 1);
    assert.equal(h.counter('helper_held'), 0);
    assert.equal(h.counter('ftp_expect_active'), 1);

    const wrongSource = firstPacket('10.2.0.9', 20, CLIENT, DATA_PORT);
    assert.equal(h.runner.takeRelated(wrongSource.buf, 0, wrongSource.srcIsA), false);
    const data = firstPacket(SERVER, 20, CLIENT, DATA_PORT);
    assert.equal(h.runner.takeRelated(data.buf, 0, data.srcIsA), true);
    assert.equal(h.runner.takeRelated(data.buf, 0, data.srcIsA), false, 'an expectation is used once');
    assert.equal(h.counter('expectations_used'), 1);
    assert.equal(h.counter('expectations_now'), 0);
  });

  it('passive mode: a 227 reply expects the client on the server port, from any source port', () => {
    const h = harness();
    h.punt(false, '227 Entering Passive Mode (10,2,0,2,117,48).\r\n');
    const data = firstPacket(CLIENT, 51234, SERVER, 117 * 256 + 48);
    assert.equal(h.runner.takeRelated(data.buf, 0, data.srcIsA), true);
    assert.equal(h.counter('ftp_expect_passive'), 1);
  });

  it('cluster: the command waits for the acks; later packets of the flow wait behind it, in order', async () => {
    const sync = new ManualSync();
    const h = harness({ sync });
    h.punt(true, PORT_CMD, 5_000_000n);
    h.punt(false, '200 PORT command successful.\r\n');
    h.punt(true, 'LIST\r\n');
    assert.equal(h.released.length, 0);
    assert.equal(sync.published.length, 1);
    assert.equal(sync.published[0]!.add[0]!.toPort, DATA_PORT);
    assert.equal(sync.published[0]!.add[0]!.fromPort, 0);
    assert.equal(sync.waits[0]!.timeoutMs, 50);
    h.advanceMs(2);
    sync.waits[0]!.resolve(true);
    await flush();
    assert.deepEqual(h.released.map((r) => r.payload), [PORT_CMD, '200 PORT command successful.\r\n', 'LIST\r\n']);
    assert.equal(h.unheld.length, 1);
    assert.equal(h.counter('helper_held'), 1);
    assert.equal(h.counter('helper_held_behind'), 2);
    assert.equal(h.counter('helper_released_on_ack'), 1);
    assert.equal(h.counter('helper_hold_samples'), 1);
    assert.ok(h.counter('helper_hold_p50_us') >= 1800 && h.counter('helper_hold_p50_us') <= 2000, `p50 ${h.counter('helper_hold_p50_us')} µs for a 2 ms hold`);
  });

  it('a second command behind a held one waits for its own acks', async () => {
    const sync = new ManualSync();
    const h = harness({ sync });
    h.punt(true, PORT_CMD);
    h.punt(true, 'EPRT |1|10.1.0.2|40001|\r\n');
    h.punt(true, 'NOOP\r\n');
    sync.waits[1]!.resolve(false);
    await flush();
    assert.equal(h.released.length, 0, 'the first command still waits');
    sync.waits[0]!.resolve(true);
    await flush();
    assert.deepEqual(h.released.map((r) => r.payload), [PORT_CMD, 'EPRT |1|10.1.0.2|40001|\r\n', 'NOOP\r\n']);
    assert.equal(h.counter('helper_released_on_ack'), 1);
    assert.equal(h.counter('helper_released_on_timeout'), 1);
  });

  it('common sync off: nothing is held, and that is counted', () => {
    const sync = new ManualSync();
    sync.kind = 'sync-off';
    const h = harness({ sync });
    h.punt(true, PORT_CMD);
    assert.equal(h.released.length, 1);
    assert.equal(h.counter('helper_hold_skipped_sync_off'), 1);
  });

  it('a refused command creates nothing and is forwarded; a stray packet of an unheld flow goes out at once', () => {
    const sync = new ManualSync();
    const h = harness({ sync });
    h.punt(true, 'PORT 192,0,2,99,156,64\r\n');
    h.punt(false, '150 Here comes the directory listing.\r\n');
    assert.equal(h.released.length, 2);
    assert.equal(h.unheld.length, 2);
    assert.equal(sync.published.length, 0);
    assert.equal(h.counter('ftp_refused_address_mismatch'), 1);
    assert.equal(h.counter('expectations_now'), 0);
  });

  it('a punt whose flow is gone is dropped', () => {
    const h = harness({ hasEntry: false });
    h.punt(true, PORT_CMD);
    assert.equal(h.released.length, 0);
    assert.equal(h.counter('helper_punts_no_entry'), 1);
  });

  it('expectations go with their control connection, expire unused, and follow the peers', () => {
    const sync = new ManualSync();
    const h = harness({ sync });
    h.punt(true, PORT_CMD);
    const control = new Uint8Array(FLOW_KEY_SIZE);
    flowKey.write(control, 0, CONTROL);
    h.runner.removed(control, 'expired', 0);
    assert.equal(h.counter('expectations_control_gone'), 1);
    assert.equal(sync.published.at(-1)!.remove[0]!.toPort, DATA_PORT);

    const fromPeer: ExpectationRecord = { ...sync.published[0]!.add[0]!, toPort: 50000, ttlMs: 10 };
    h.runner.onPeerExpectations([fromPeer], []);
    const data = firstPacket(SERVER, 20, CLIENT, 50000);
    h.advanceMs(11);
    assert.equal(h.runner.takeRelated(data.buf, 0, data.srcIsA), false, 'expired');
    h.runner.onPeerExpectations([{ ...fromPeer, ttlMs: 1000 }], []);
    h.runner.onPeerExpectations([], [fromPeer]);
    assert.equal(h.counter('expectations_removed_by_peer'), 1);
    assert.equal(h.runner.takeRelated(data.buf, 0, data.srcIsA), false, 'removed by the peer');
    h.runner.onPeerExpectations([{ ...fromPeer, ttlMs: 1000 }], []);
    assert.equal(h.runner.takeRelated(data.buf, 0, data.srcIsA), true);
    assert.deepEqual(sync.published.at(-1)!.remove.map((r) => r.toPort), [50000], 'the use is announced to the peers');
  });

  it('shutdown releases what is held', () => {
    const sync = new ManualSync();
    const h = harness({ sync });
    h.punt(true, PORT_CMD);
    h.punt(true, 'LIST\r\n');
    h.runner.close();
    assert.deepEqual(h.released.map((r) => r.payload), [PORT_CMD, 'LIST\r\n']);
  });
});

describe('cluster expectation sync', () => {
  function channel(peers: number[], off = false) {
    const sent: { to: number; payload: SyncPayload }[] = [];
    const acks = new Map<number, boolean>();
    const ch: CommonStateChannel = {
      livePeers: () => peers,
      commonSyncOff: () => off,
      send: (to, payload) => sent.push({ to, payload }),
      waitAcked: async (to) => acks.get(to) ?? false,
    };
    return { sync: new ClusterExpectationSync(ch), sent, acks };
  }
  const rec: ExpectationRecord = { family: 4, proto: 6, from: addressBytes(SERVER), fromPort: 0, to: addressBytes(CLIENT), toPort: 40000, helper: 1, control: CONTROL, ttlMs: 1 };

  it('sends to every live peer and reports acked only when all acked', async () => {
    const c = channel([2, 3]);
    const p = c.sync.publish([rec], []);
    assert.deepEqual(c.sent.map((s) => s.to), [2, 3]);
    assert.deepEqual(c.sent[0]!.payload, { kind: 'expectations', add: [rec], remove: [] });
    assert.equal(p.kind, 'sent');
    c.acks.set(2, true);
    assert.equal(p.kind === 'sent' && (await p.acked(50)), false);
    c.acks.set(3, true);
    assert.equal(p.kind === 'sent' && (await p.acked(50)), true);
  });

  it('sends nothing with common sync off or without live peers', () => {
    assert.equal(channel([2], true).sync.publish([rec], []).kind, 'sync-off');
    assert.equal(channel([]).sync.publish([rec], []).kind, 'alone');
  });
});
