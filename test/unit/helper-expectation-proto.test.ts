// Helper expectations on the sync wire: the 'expectations' payload survives a
// frame exactly (IPv4 and IPv6, wildcard source port), an older node's view
// (no Expectations message) skips it, and expectations no node could match
// are refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { EntryProtoError, expectationFromProto, expectationToProto } from '../../control/src/cluster/entry-proto.js';
import { decodeFrame, decodePayload, encodeFrame, encodePayload, UnknownPayloadError } from '../../control/src/cluster/transport-codec.js';
import type { ExpectationRecord, SyncPayload } from '../../control/src/cluster/types.js';

const v4: ExpectationRecord = {
  family: 4,
  proto: 6,
  from: Uint8Array.of(10, 2, 0, 2),
  fromPort: 0,
  to: Uint8Array.of(10, 1, 0, 2),
  toPort: 40123,
  helper: 1,
  control: { family: 4, proto: 6, addrA: Uint8Array.of(10, 1, 0, 2), addrB: Uint8Array.of(10, 2, 0, 2), portA: 40000, portB: 21 },
  ttlMs: 60_000,
};
const v6: ExpectationRecord = {
  ...v4,
  family: 6,
  from: new Uint8Array(16).fill(0xfd),
  fromPort: 20,
  to: new Uint8Array(16).fill(0x20),
  toPort: 65535,
  control: { family: 6, proto: 6, addrA: new Uint8Array(16).fill(0x20), addrB: new Uint8Array(16).fill(0xfd), portA: 51000, portB: 21 },
  ttlMs: 1,
};

test('expectations added and removed survive a frame exactly', () => {
  const payloads: SyncPayload[] = [
    { kind: 'expectations', add: [v4, v6], remove: [] },
    { kind: 'expectations', add: [], remove: [v6] },
  ];
  const frame = decodeFrame(encodeFrame({ ack: 3, firstSeq: 9, payloads: payloads.map(encodePayload) }));
  assert.deepEqual(frame.payloads.map(decodePayload), payloads);
});

test('a node that does not know the payload kind refuses it by name', () => {
  // a body field beyond this version's oneof, as a newer node would send
  const newer = protobuf.Writer.create().uint32((40 << 3) | 2).bytes(encodePayload({ kind: 'expectations', add: [v4], remove: [] })).finish();
  const frame = decodeFrame(encodeFrame({ ack: 0, firstSeq: 1, payloads: [newer] }));
  assert.throws(() => decodePayload(frame.payloads[0]!), UnknownPayloadError);
});

test('expectations no node could match are refused', () => {
  const bad = [
    { ...expectationToProto(v4), family: 5 },
    { ...expectationToProto(v4), fromAddr: new Uint8Array(16) },
    { ...expectationToProto(v6), toAddr: Uint8Array.of(1, 2, 3, 4) },
    { ...expectationToProto(v4), toPort: 0 },
    { ...expectationToProto(v4), toPort: 70000 },
    { ...expectationToProto(v4), fromPort: 65536 },
    { ...expectationToProto(v4), control: null },
  ];
  for (const m of bad) assert.throws(() => expectationFromProto(m), EntryProtoError, JSON.stringify(m));
});

test('a negative or fractional time to live goes out as whole milliseconds from 0', () => {
  assert.equal(expectationToProto({ ...v4, ttlMs: -5 }).ttlMs, 0);
  assert.equal(expectationToProto({ ...v4, ttlMs: 12.6 }).ttlMs, 13);
});
