// Codec semantics: round trips, allocation-free accessors agreeing with the
// decoders, and the records the data plane writes read back field by field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CodecError,
  FLOW_ENTRY_SIZE,
  FLOW_KEY_SIZE,
  flowEntry,
  flowKey,
  puntMeta,
  recordType,
  stateEvent,
  type FlowEntry,
  type FlowKey,
} from '../../control/src/bpf/codec.js';
import {
  EventType,
  FlowFlag,
  FlowState,
  PuntMetaLayout,
  PuntSmallLayout,
  StateEventLayout,
  SwFamily,
} from '../../control/src/gen/layout.js';

const v4Key: FlowKey = {
  family: SwFamily.SW_FAMILY_V4,
  proto: 6,
  addrA: Uint8Array.of(10, 0, 0, 1),
  addrB: Uint8Array.of(192, 168, 7, 9),
  portA: 40000,
  portB: 443,
};

const v6Key: FlowKey = {
  family: SwFamily.SW_FAMILY_V6,
  proto: 17,
  addrA: Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1]),
  addrB: Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 2]),
  portA: 65535,
  portB: 0,
};

const entry: FlowEntry = {
  state: FlowState.FS_TIME_WAIT,
  flags: FlowFlag.FLOW_F_ORIG_A | FlowFlag.FLOW_F_COMMON,
  helper: 1,
  lastDir: 1,
  ownerNode: 65535,
  ruleId: 4294967295,
  version: 17,
  win: [
    { end: 4294967295, maxEnd: 1, maxWin: 65535, maxAck: 123456789, scale: 7, flags: 3 },
    { end: 0, maxEnd: 2, maxWin: 29200, maxAck: 0, scale: 0, flags: 8 },
  ],
  lastSeenNs: 18446744073709551615n,
  packets: [1n, 2n ** 40n],
  bytes: [60n, 2n ** 63n],
  createdNs: 123456789012345n,
  origIfindex: 3,
};

/** Writes little-endian integers at BTF offsets, as the data plane would. */
function poke(buf: Uint8Array, off: number, size: number, value: number | bigint): void {
  let v = BigInt(value);
  for (let i = 0; i < size; i++, v >>= 8n) buf[off + i] = Number(v & 0xffn);
}

describe('flow_key', () => {
  for (const [name, key] of [['IPv4', v4Key], ['IPv6', v6Key]] as const) {
    it(`round-trips an ${name} key at an offset`, () => {
      const buf = new Uint8Array(FLOW_KEY_SIZE + 13);
      flowKey.write(buf, 13, key);
      assert.deepEqual(flowKey.read(buf, 13), key);
    });
  }

  it('has accessors that agree with read', () => {
    const buf = new Uint8Array(FLOW_KEY_SIZE + 3);
    flowKey.write(buf, 3, v6Key);
    assert.equal(flowKey.family(buf, 3), v6Key.family);
    assert.equal(flowKey.proto(buf, 3), v6Key.proto);
    assert.equal(flowKey.portA(buf, 3), v6Key.portA);
    assert.equal(flowKey.portB(buf, 3), v6Key.portB);
    assert.deepEqual(buf.subarray(flowKey.addrAOffset(3), flowKey.addrAOffset(3) + 16), v6Key.addrA);
    assert.deepEqual(buf.subarray(flowKey.addrBOffset(3), flowKey.addrBOffset(3) + 16), v6Key.addrB);
  });

  it('rejects addresses of the wrong length for the family', () => {
    const buf = new Uint8Array(FLOW_KEY_SIZE);
    assert.throws(() => flowKey.write(buf, 0, { ...v4Key, addrB: v6Key.addrB }), CodecError);
    assert.throws(() => flowKey.write(buf, 0, { ...v6Key, family: 5 }), /unknown address family 5/);
  });
});

describe('flow_entry', () => {
  it('round-trips every field, including u64 extremes', () => {
    const buf = new Uint8Array(FLOW_ENTRY_SIZE * 2);
    flowEntry.encode(buf, FLOW_ENTRY_SIZE, entry);
    assert.deepEqual(flowEntry.decode(buf, FLOW_ENTRY_SIZE), entry);
  });

  it('has accessors that agree with decode', () => {
    const buf = new Uint8Array(FLOW_ENTRY_SIZE);
    flowEntry.encode(buf, 0, { ...entry, lastSeenNs: 987654321012n });
    assert.equal(flowEntry.state(buf, 0), entry.state);
    assert.equal(flowEntry.flags(buf, 0), entry.flags);
    assert.equal(flowEntry.version(buf, 0), entry.version);
    assert.equal(flowEntry.ruleId(buf, 0), entry.ruleId);
    assert.equal(flowEntry.origIfindex(buf, 0), entry.origIfindex);
    assert.equal(flowEntry.lastSeenNs(buf, 0), 987654321012);
  });

  it('encodes a new entry in state NONE, idle since creation, over stale bytes', () => {
    const buf = new Uint8Array(FLOW_ENTRY_SIZE).fill(0xaa);
    flowEntry.encodeNew(buf, 0, { flags: FlowFlag.FLOW_F_ORIG_A, ruleId: 12, helper: 1, ownerNode: 2, origIfindex: 5, createdNs: 1000n });
    const zeroWin = { end: 0, maxEnd: 0, maxWin: 0, maxAck: 0, scale: 0, flags: 0 };
    assert.deepEqual(flowEntry.decode(buf, 0), {
      state: FlowState.FS_NONE,
      flags: FlowFlag.FLOW_F_ORIG_A,
      helper: 1,
      lastDir: 0,
      ownerNode: 2,
      ruleId: 12,
      version: 0,
      win: [zeroWin, zeroWin],
      lastSeenNs: 1000n,
      packets: [0n, 0n],
      bytes: [0n, 0n],
      createdNs: 1000n,
      origIfindex: 5,
    });
  });
});

describe('ring-buffer records', () => {
  it('reads every punt_meta field and finds the key and packet bytes', () => {
    const f = PuntMetaLayout.fields;
    const base = 16;
    const buf = new Uint8Array(base + PuntSmallLayout.size);
    poke(buf, base + f.type.offset, 2, EventType.EV_HELPER);
    poke(buf, base + f.src_is_a.offset, 1, 1);
    poke(buf, base + f.icmp_type.offset, 1, 8);
    poke(buf, base + f.icmp_code.offset, 1, 3);
    poke(buf, base + f.ifindex.offset, 4, 0x01020304);
    poke(buf, base + f.ts_ns.offset, 8, 0xfedcba9876543210n);
    poke(buf, base + f.pkt_len.offset, 4, 98);
    poke(buf, base + f.cap_len.offset, 2, 98);
    poke(buf, base + f.l3_off.offset, 2, 18);
    poke(buf, base + f.l4_off.offset, 2, 38);
    flowKey.write(buf, base + f.key.offset, v4Key);
    buf[base + PuntSmallLayout.fields.data.offset] = 0x5a;

    assert.equal(recordType(buf, base), EventType.EV_HELPER);
    assert.equal(puntMeta.type(buf, base), EventType.EV_HELPER);
    assert.equal(puntMeta.srcIsA(buf, base), true);
    assert.equal(puntMeta.icmpType(buf, base), 8);
    assert.equal(puntMeta.icmpCode(buf, base), 3);
    assert.equal(puntMeta.ifindex(buf, base), 0x01020304);
    assert.equal(puntMeta.tsNs(buf, base), 0xfedcba9876543210n);
    assert.equal(puntMeta.pktLen(buf, base), 98);
    assert.equal(puntMeta.capLen(buf, base), 98);
    assert.equal(puntMeta.l3Off(buf, base), 18);
    assert.equal(puntMeta.l4Off(buf, base), 38);
    assert.deepEqual(flowKey.read(buf, puntMeta.keyOffset(base)), v4Key);
    assert.equal(buf[puntMeta.dataOffset(base)], 0x5a);
  });

  it('decodes a state_event', () => {
    const f = StateEventLayout.fields;
    const buf = new Uint8Array(StateEventLayout.size);
    poke(buf, f.type.offset, 2, EventType.EV_STATE);
    poke(buf, f.old_state.offset, 1, FlowState.FS_SYN_RECV);
    poke(buf, f.new_state.offset, 1, FlowState.FS_ESTABLISHED);
    poke(buf, f.version.offset, 4, 3);
    poke(buf, f.ts_ns.offset, 8, 5000000000n);
    poke(buf, f.rule_id.offset, 4, 77);
    poke(buf, f.flags.offset, 1, FlowFlag.FLOW_F_ORIG_A);
    flowKey.write(buf, f.key.offset, v6Key);
    assert.equal(recordType(buf, 0), EventType.EV_STATE);
    assert.deepEqual(stateEvent.decode(buf, 0), {
      type: EventType.EV_STATE,
      oldState: FlowState.FS_SYN_RECV,
      newState: FlowState.FS_ESTABLISHED,
      version: 3,
      tsNs: 5000000000n,
      key: v6Key,
      ruleId: 77,
      flags: FlowFlag.FLOW_F_ORIG_A,
    });
  });
});
