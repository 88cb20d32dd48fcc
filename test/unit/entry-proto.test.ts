// Struct bytes <-> protobuf FlowRecord: round trips, 64-bit counters and
// times, and messages from older and newer schema versions (missing fields
// default, unknown ones are skipped). The direct writer and reader are
// checked against protobufjs and proto/sync.proto's field numbers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { FLOW_KEY_SIZE, flowKey } from '../../control/src/bpf/codec.js';
import { EntryProtoError, readRecord, writeRecord } from '../../control/src/cluster/entry-proto.js';
import { FlowRecords } from '../../control/src/cluster/flow-records.js';
import { ProtoReader, ProtoReadError } from '../../control/src/cluster/proto-reader.js';
import { ProtoWriter } from '../../control/src/cluster/proto-writer.js';
import { decodeFrame, decodePayload, encodeFrame, encodePayload } from '../../control/src/cluster/transport-codec.js';
import type { SyncPayload } from '../../control/src/cluster/types.js';
import { findInstallFile } from '../../control/src/install-files.js';
import { keysOf, plain, readable, recordsOf, type PlainRecord } from './flow-records-fixture.js';

const root = protobuf.loadSync(findInstallFile('proto/sync.proto'));
const current = root.lookupType('syncwall.sync.v1.FlowRecord');
// writeRecord writes a FlowRecord as an embedded field: decode it through a one-field wrapper.
const wrapper = new protobuf.Type('RecordWrapper').add(new protobuf.Field('record', 1, 'syncwall.sync.v1.FlowRecord'));
root.add(wrapper);

/** The production encoder's bytes for a record (an embedded field 1). */
function written(r: PlainRecord): Uint8Array {
  const w = new ProtoWriter();
  writeRecord(w, 1, recordsOf([r]), 0);
  return w.finish();
}

/** r as the production encoder puts it on the wire, decoded by protobufjs into a message object. */
function onWire(r: PlainRecord): Record<string, any> {
  return (wrapper.decode(written(r)) as unknown as { record: Record<string, any> }).record;
}

/** A FlowRecord message's bytes (from any encoder) read back by the production reader. */
function readBare(message: Uint8Array): PlainRecord {
  const wrapped = protobuf.Writer.create().uint32((1 << 3) | 2).bytes(message).finish();
  const rd = new ProtoReader(wrapped);
  assert.ok(rd.next());
  const into = new FlowRecords();
  readRecord(rd, into);
  return plain(into)[0]!;
}

/** r written by the production writer, read back by the production reader. */
function viaWire(r: PlainRecord): PlainRecord {
  const rd = new ProtoReader(written(r));
  assert.ok(rd.next());
  const into = new FlowRecords();
  readRecord(rd, into);
  return plain(into)[0]!;
}

// In transit, created_ns and last_seen_ns hold "ns ago"; the wire carries whole ms.
const MS = 1_000_000n;
const v4: PlainRecord = {
  key: { family: 4, proto: 6, addrA: new Uint8Array([10, 0, 0, 1]), addrB: new Uint8Array([192, 168, 1, 9]), portA: 443, portB: 51000 },
  entry: {
    state: 3, flags: 0x21, helper: 1, lastDir: 1, ownerNode: 65535, ruleId: 4_000_000_000, version: 17,
    win: [
      { end: 0xffffffff, maxEnd: 1, maxWin: 65535, maxAck: 0x80000000, scale: 14, flags: 3 },
      { end: 5, maxEnd: 6, maxWin: 7, maxAck: 8, scale: 0, flags: 0 },
    ],
    lastSeenNs: 0n,
    packets: [0n, 2n ** 64n - 1n],
    bytes: [2n ** 53n + 1n, 123n],
    createdNs: 86_400_000n * 400n * MS,
    origIfindex: 0,
  },
};
const v6: PlainRecord = {
  ...v4,
  key: { family: 6, proto: 17, addrA: new Uint8Array(16).fill(0x20), addrB: new Uint8Array(16).fill(0xfe), portA: 53, portB: 53 },
};

/** What proto/sync.proto says record r is on the wire (protobufjs toObject form: uint64 as strings, bytes as arrays). */
function expectedMessage(r: PlainRecord): Record<string, unknown> {
  const e = r.entry;
  const win = (w: PlainRecord['entry']['win'][number]) => ({ end: w.end, maxEnd: w.maxEnd, maxWin: w.maxWin, maxAck: w.maxAck, scale: w.scale, flags: w.flags });
  return {
    key: { family: r.key.family, proto: r.key.proto, addrA: [...r.key.addrA], addrB: [...r.key.addrB], portA: r.key.portA, portB: r.key.portB },
    state: e.state, flags: e.flags, helper: e.helper, lastDir: e.lastDir, ownerNode: e.ownerNode, ruleId: e.ruleId, version: e.version,
    winOrig: win(e.win[0]), winReply: win(e.win[1]),
    packetsOrig: String(e.packets[0]), packetsReply: String(e.packets[1]), bytesOrig: String(e.bytes[0]), bytesReply: String(e.bytes[1]),
    ageMs: String(e.createdNs / MS), idleMs: String(e.lastSeenNs / MS),
  };
}

test('records survive the wire exactly, IPv4 and IPv6, counters up to 2^64-1', () => {
  assert.deepEqual(viaWire(v4), v4);
  assert.deepEqual(viaWire(v6), v6);
});

test('every field lands in its proto/sync.proto field, as protobufjs reads it', () => {
  for (const r of [v4, v6]) {
    assert.deepEqual(current.toObject(current.fromObject(onWire(r)), { longs: String, bytes: Array, defaults: true }), expectedMessage(r));
  }
});

test('times go on the wire in whole milliseconds, rounded down, exact up to 2^64-1 ns', () => {
  for (const ns of [0n, 999_999n, 1_000_000n, 2n ** 53n + 1_999_999n, 2n ** 63n + 12_345_678n, 2n ** 64n - 1n]) {
    const r = { ...v4, entry: { ...v4.entry, createdNs: ns, lastSeenNs: ns } };
    const m = current.toObject(current.fromObject(onWire(r)), { longs: String }) as { ageMs?: string; idleMs?: string };
    assert.equal(m.ageMs ?? '0', String(ns / MS), `${ns} ns`);
    assert.equal(viaWire(r).entry.createdNs, (ns / MS) * MS);
  }
});

test('a time too far back for a u64 of ns saturates instead of wrapping', () => {
  const bytes = current.encode({ ...onWire(v4), ageMs: '18446744073709551615' }).finish();
  assert.equal(readBare(bytes).entry.createdNs, 2n ** 64n - 1n);
});

test('the reader reads what protobufjs writes, and protobufjs reads what the writer writes', () => {
  let seed = 7;
  const rnd = (max: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % max;
  };
  const big = (): bigint => (BigInt(rnd(2 ** 31)) << BigInt(rnd(34))) + BigInt(rnd(1000));
  const win = () => ({ end: rnd(2 ** 31) * 2, maxEnd: rnd(2 ** 31), maxWin: rnd(65536), maxAck: rnd(2 ** 31), scale: rnd(15), flags: rnd(8) });
  for (let i = 0; i < 200; i++) {
    const base = i % 2 ? v4 : v6;
    const r: PlainRecord = {
      key: base.key,
      entry: {
        state: rnd(8), flags: rnd(256), helper: rnd(3), lastDir: rnd(2), ownerNode: rnd(65536), ruleId: rnd(2 ** 31) * 2, version: rnd(2 ** 31),
        win: [win(), win()],
        packets: [big(), big()],
        bytes: [big(), big()],
        createdNs: BigInt(rnd(2 ** 31) * rnd(2 ** 12)) * MS, // up to 2^43 ms: within a u64 of ns
        lastSeenNs: BigInt(rnd(100)) * MS,
        origIfindex: 0,
      },
    };
    const m = onWire(r);
    assert.deepEqual(current.toObject(current.fromObject(m), { longs: String, bytes: Array, defaults: true }), expectedMessage(r));
    // the same bytes as protobufjs writes for the record it decoded from ours
    assert.deepEqual(Buffer.from(written(r)), Buffer.from(wrapper.encode({ record: m }).finish()));
    assert.deepEqual(readBare(current.encode(m).finish()), r);
  }
});

test('a message from an older schema (fewer fields) decodes with defaults', () => {
  const older = protobuf.parse(`syntax = "proto3";
    message FlowKey { uint32 family = 1; uint32 proto = 2; bytes addr_a = 3; bytes addr_b = 4; uint32 port_a = 5; uint32 port_b = 6; }
    message FlowRecord { FlowKey key = 1; uint32 state = 2; uint64 packets_orig = 11; }`).root.lookupType('FlowRecord');
  const bytes = older.encode({ key: onWire(v4)['key'], state: 4, packetsOrig: 9 }).finish();
  const r = readBare(bytes);
  assert.deepEqual(r.key, v4.key);
  assert.equal(r.entry.state, 4);
  assert.deepEqual(r.entry.packets, [9n, 0n]);
  assert.deepEqual(r.entry.bytes, [0n, 0n]);
  assert.deepEqual(r.entry.win[1], { end: 0, maxEnd: 0, maxWin: 0, maxAck: 0, scale: 0, flags: 0 });
  assert.equal(r.entry.createdNs, 0n);
});

test('a message from a newer schema (extra fields, also in nested messages) decodes, the extras ignored', () => {
  const newer = protobuf.parse(`syntax = "proto3";
    message FlowKey { uint32 family = 1; uint32 proto = 2; bytes addr_a = 3; bytes addr_b = 4; uint32 port_a = 5; uint32 port_b = 6; uint32 zone = 7; }
    message TcpWindow { uint32 end = 1; uint32 max_end = 2; uint32 max_win = 3; uint32 max_ack = 4; uint32 scale = 5; uint32 flags = 6; }
    message FlowRecord { FlowKey key = 1; uint32 state = 2; uint32 flags = 3; uint32 helper = 4; uint32 last_dir = 5;
      uint32 owner_node = 6; uint32 rule_id = 7; uint32 version = 8; TcpWindow win_orig = 9; TcpWindow win_reply = 10;
      uint64 packets_orig = 11; uint64 packets_reply = 12; uint64 bytes_orig = 13; uint64 bytes_reply = 14;
      uint64 age_ms = 15; uint64 idle_ms = 16; string vpn_tunnel = 40; repeated fixed64 future = 41; }`).root.lookupType('FlowRecord');
  const m = current.toObject(current.fromObject(onWire(v4)), { longs: String });
  const bytes = newer.encode({ ...m, key: { ...m['key'], zone: 12 }, vpnTunnel: 'ipsec-7', future: [1, 2, 3] }).finish();
  assert.deepEqual(readBare(bytes), v4);
});

test('keys no data plane could hold are rejected with a reason', () => {
  const bad = onWire(v4);
  const encoded = (m: Record<string, any>): Uint8Array => current.encode(m).finish();
  assert.throws(() => readBare(encoded({ ...bad, key: null })), EntryProtoError);
  assert.throws(() => readBare(encoded({ ...bad, key: { ...bad['key'], family: 5 } })), /unknown address family 5/);
  assert.throws(() => readBare(encoded({ ...bad, key: { ...bad['key'], family: 6 } })), /16-byte addresses/);
  assert.throws(() => readBare(encoded({ ...bad, key: { ...bad['key'], family: 260 } })), /unknown address family 260/, 'not read as 260 & 255 = 4');
  assert.throws(() => readBare(encoded({ ...bad, key: { ...bad['key'], addrA: new Uint8Array(17) } })), /4-byte addresses, got 17 and 4/);
});

test('a record with broken bytes inside is refused, not misread', () => {
  const good = current.encode(onWire(v4)).finish();
  const tag = (field: number, wireType: number): number[] => [...protobuf.Writer.create().uint32((field << 3) | wireType).finish()];
  // state (field 2) sent length-delimited
  const wrongType = Uint8Array.from([...good, (2 << 3) | 2, 1, 0]);
  assert.throws(() => readBare(wrongType), /field 2: wire type 2, expected 0/);
  // a varint cut off at the message's end, and an unknown field running past it
  assert.throws(() => readBare(Uint8Array.from([...good, 2 << 3, 0x80])), /varint truncated/);
  assert.throws(() => readBare(Uint8Array.from([...good, 0, 1])), /field number 0/);
  assert.throws(() => readBare(Uint8Array.from([...good, ...tag(40, 2), 5, 1])), /truncated/);
  // unknown fields of every wire type are skipped
  const extras = Uint8Array.from([...good, ...tag(40, 0), 0x81, 0x01, ...tag(41, 1), ...new Array(8).fill(7), ...tag(42, 5), 1, 2, 3, 4, ...tag(43, 2), 2, 9, 9]);
  assert.deepEqual(readBare(extras), v4);
});

test('broken bytes are refused, not misread', () => {
  const whole = encodeFrame({ ack: 1, firstSeq: 2, payloads: [encodePayload({ kind: 'entries', cls: 'node', entries: recordsOf([v4]) })] });
  assert.throws(() => decodeFrame(whole.subarray(0, whole.length - 3)), ProtoReadError);
  const payload = decodeFrame(whole).payloads[0]!;
  assert.throws(() => decodePayload(payload.subarray(0, payload.length - 1)), ProtoReadError);
  assert.throws(() => decodeFrame(Uint8Array.of(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), /longer than 10 bytes/);
});

test('every payload kind survives a frame; seqs follow first_seq; hello and heartbeat ride along', () => {
  const payloads: SyncPayload[] = [
    { kind: 'entries', cls: 'common', entries: recordsOf([v4, v6]) },
    { kind: 'removes', keys: keysOf([v6.key, v4.key]) },
    { kind: 'removes', keys: keysOf([]) },
    { kind: 'request', requestId: 3, flows: [v4.key] },
    { kind: 'request', requestId: 4, all: true },
    { kind: 'bulk', requestId: 4, entries: recordsOf([v6]), last: true },
    { kind: 'bulk', requestId: 5, entries: recordsOf([]), last: false },
    { kind: 'handover', buckets: [0, 5, 1023] },
  ];
  const hello = { clusterId: 'c', nodeId: 3, incarnation: 'i-1', state: 'draining' as const, ackedIncarnation: 'i-0' };
  const frame = decodeFrame(encodeFrame({ ack: 2 ** 40, firstSeq: 77, payloads: payloads.map(encodePayload), hello, heartbeat: 'active' }));
  assert.equal(frame.ack, 2 ** 40);
  assert.equal(frame.firstSeq, 77);
  assert.deepEqual(frame.hello, hello);
  assert.equal(frame.heartbeat, 'active');
  assert.deepEqual(frame.payloads.map((p) => readable(decodePayload(p))), payloads.map(readable));
  const bare = decodeFrame(encodeFrame({ ack: 0, firstSeq: 0, payloads: [] }));
  assert.deepEqual(bare, { ack: 0, firstSeq: 0, payloads: [], hello: null, heartbeat: null });
});

test('removed keys: the direct writer and reader agree with protobufjs on Payload.removes', () => {
  const payloadType = root.lookupType('syncwall.sync.v1.Payload');
  const keys = [v4.key, v6.key, { ...v4.key, portA: 0, proto: 1 }];
  const bytes = encodePayload({ kind: 'removes', keys: keysOf(keys) });
  const m = payloadType.toObject(payloadType.decode(bytes), { bytes: Array }) as { removes: { keys: Record<string, unknown>[] } };
  const proto = (k: PlainRecord['key']): Record<string, unknown> => {
    const out: Record<string, unknown> = { family: k.family, proto: k.proto, addrA: [...k.addrA], addrB: [...k.addrB], portB: k.portB };
    if (k.portA !== 0) out['portA'] = k.portA;
    return out;
  };
  assert.deepEqual(m.removes.keys, keys.map(proto));
  assert.deepEqual(Buffer.from(bytes), Buffer.from(payloadType.encode(payloadType.fromObject(m)).finish()));
  const fromProtobufjs = payloadType.encode({ removes: { keys: keys.map((k) => ({ ...k })) } }).finish();
  assert.deepEqual(readable(decodePayload(fromProtobufjs)), { kind: 'removes', keys });
  const bad = payloadType.encode({ removes: { keys: [{ ...v4.key }, { ...v4.key, family: 6 }] } }).finish();
  assert.throws(() => decodePayload(bad), /16-byte addresses/);
});

test('a second key replaces the first; a record that failed leaves nothing behind in the next one', () => {
  const keyOf = (r: PlainRecord): Uint8Array => current.encode({ key: onWire(r)['key'] }).finish();
  // FlowRecord bytes are concatenable: the v4 key after the v6 one wins, none of the v6 address bytes stay
  const wrapped = (m: Uint8Array): Uint8Array => protobuf.Writer.create().uint32((1 << 3) | 2).bytes(m).finish();
  const twoKeys = new FlowRecords();
  const rd0 = new ProtoReader(wrapped(Uint8Array.from([...current.encode(onWire(v6)).finish(), ...keyOf(v4)])));
  assert.ok(rd0.next());
  readRecord(rd0, twoKeys);
  const v4Bytes = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(v4Bytes, 0, v4.key);
  assert.deepEqual(twoKeys.keys.subarray(0, FLOW_KEY_SIZE), v4Bytes);
  assert.deepEqual(plain(twoKeys)[0]!.entry, v6.entry);
  const into = new FlowRecords();
  const broken = wrapped(Uint8Array.from([...current.encode(onWire(v6)).finish(), (2 << 3) | 2, 1, 0]));
  const rd1 = new ProtoReader(broken);
  assert.ok(rd1.next());
  assert.throws(() => readRecord(rd1, into));
  assert.equal(into.length, 0);
  const older = protobuf.parse(`syntax = "proto3";
    message FlowKey { uint32 family = 1; uint32 proto = 2; bytes addr_a = 3; bytes addr_b = 4; uint32 port_a = 5; uint32 port_b = 6; }
    message FlowRecord { FlowKey key = 1; uint32 state = 2; }`).root.lookupType('FlowRecord');
  const rd2 = new ProtoReader(wrapped(older.encode({ key: onWire(v4)['key'], state: 4 }).finish()));
  assert.ok(rd2.next());
  readRecord(rd2, into);
  const [r] = plain(into);
  assert.deepEqual(r!.key, v4.key);
  assert.equal(r!.entry.state, 4);
  assert.deepEqual([r!.entry.packets, r!.entry.win[0].end, r!.entry.createdNs], [[0n, 0n], 0, 0n], 'no bytes of the failed record');
});
