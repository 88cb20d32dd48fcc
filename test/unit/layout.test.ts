// The TypeScript view of the shared structs against the built object's BTF:
// the generated layout must be current, the codec must put every field where
// BTF says, and the C headers' size asserts must agree with BTF.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { flowEntry, flowKey } from '../../control/src/bpf/codec.js';
import { FlowEntryLayout, FlowKeyLayout, FlowState, STRUCT_LAYOUTS, TcpWindowLayout } from '../../control/src/gen/layout.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OBJ = 'build/syncwall.bpf.o';
const GENERATED = 'control/src/gen/layout.ts';

function runGenerator(obj: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', 'tools/gen-layout.ts', obj], { cwd: ROOT, encoding: 'utf8' });
}

const le = (b: Uint8Array, off: number, size: number): bigint => {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i]!);
  return v;
};

describe('generated layout', () => {
  it('is current with the built object', () => {
    assert.ok(existsSync(resolve(ROOT, OBJ)), `${OBJ} is missing: run make`);
    const fresh = runGenerator(OBJ);
    assert.equal(fresh.status, 0, fresh.stderr);
    assert.equal(readFileSync(join(ROOT, GENERATED), 'utf8'), fresh.stdout, `${GENERATED} is stale: run make gen`);
  });

  it('fails naming the type when a required struct is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-layout-'));
    try {
      writeFileSync(join(dir, 'partial.bpf.c'), 'struct flow_key { unsigned char b[40]; };\nstruct flow_key k;\n');
      execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-c', 'partial.bpf.c', '-o', 'partial.bpf.o'], { cwd: dir });
      const res = runGenerator(join(dir, 'partial.bpf.o'));
      assert.equal(res.status, 1);
      assert.match(res.stderr, /struct tcp_window is missing/);
      assert.equal(res.stdout, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('codec against BTF offsets', () => {
  it('writes flow_key fields where BTF places them', () => {
    const f = FlowKeyLayout.fields;
    const buf = new Uint8Array(FlowKeyLayout.size + 8).fill(0xee);
    const off = 8;
    flowKey.write(buf, off, {
      family: 6,
      proto: 17,
      addrA: Uint8Array.from({ length: 16 }, (_, i) => i + 1),
      addrB: Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i),
      portA: 0x1234,
      portB: 53,
    });
    assert.deepEqual([...buf.subarray(off + f.addr_a.offset, off + f.addr_a.offset + 16)], [...Array(16).keys()].map((i) => i + 1));
    assert.equal(buf[off + f.addr_b.offset + 15], 0xaf);
    assert.deepEqual([buf[off + f.port_a.offset], buf[off + f.port_a.offset + 1]], [0x12, 0x34], 'ports are network order');
    assert.deepEqual([buf[off + f.port_b.offset], buf[off + f.port_b.offset + 1]], [0, 53]);
    assert.equal(buf[off + f.proto.offset], 17);
    assert.equal(buf[off + f.family.offset], 6);
    assert.equal(le(buf, off + f.reserved0.offset, f.reserved0.size), 0n);
    assert.deepEqual([...buf.subarray(0, off)], Array(off).fill(0xee), 'nothing written before the key');
  });

  it('zeroes the unused bytes of an IPv4 key', () => {
    const buf = new Uint8Array(FlowKeyLayout.size).fill(0xff);
    flowKey.write(buf, 0, { family: 4, proto: 6, addrA: Uint8Array.of(10, 0, 0, 1), addrB: Uint8Array.of(10, 0, 0, 2), portA: 1, portB: 2 });
    const a = FlowKeyLayout.fields.addr_a.offset;
    assert.deepEqual([...buf.subarray(a, a + 16)], [10, 0, 0, 1, ...Array(12).fill(0)]);
  });

  it('writes flow_entry fields where BTF places them', () => {
    const f = FlowEntryLayout.fields;
    const w = TcpWindowLayout.fields;
    const buf = new Uint8Array(FlowEntryLayout.size);
    flowEntry.encode(buf, 0, {
      state: FlowState.FS_ESTABLISHED,
      flags: 0x5,
      helper: 1,
      lastDir: 1,
      ownerNode: 0x0203,
      ruleId: 0x01020304,
      version: 0xfffffffe,
      win: [
        { end: 1, maxEnd: 2, maxWin: 3, maxAck: 4, scale: 7, flags: 9 },
        { end: 0x80000000, maxEnd: 6, maxWin: 7, maxAck: 8, scale: 14, flags: 2 },
      ],
      lastSeenNs: 0x1122334455667788n,
      packets: [10n, 20n],
      bytes: [3000n, 0xffffffffffffffffn],
      createdNs: 42n,
      origIfindex: 7,
    });
    assert.equal(buf[f.state.offset], FlowState.FS_ESTABLISHED);
    assert.equal(buf[f.flags.offset], 5);
    assert.equal(buf[f.helper.offset], 1);
    assert.equal(buf[f.last_dir.offset], 1);
    assert.equal(le(buf, f.owner_node.offset, 2), 0x0203n);
    assert.equal(le(buf, f.rule_id.offset, 4), 0x01020304n);
    assert.equal(le(buf, f.version.offset, 4), 0xfffffffen);
    const win1 = f.win.offset + f.win.elemSize;
    assert.equal(le(buf, f.win.offset + w.td_maxack.offset, 4), 4n);
    assert.equal(buf[f.win.offset + w.td_scale.offset], 7);
    assert.equal(buf[f.win.offset + w.flags.offset], 9);
    assert.equal(le(buf, win1 + w.td_end.offset, 4), 0x80000000n);
    assert.equal(buf[win1 + w.td_scale.offset], 14);
    assert.equal(le(buf, f.last_seen_ns.offset, 8), 0x1122334455667788n);
    assert.equal(le(buf, f.packets.offset + f.packets.elemSize, 8), 20n);
    assert.equal(le(buf, f.bytes.offset, 8), 3000n);
    assert.equal(le(buf, f.bytes.offset + f.bytes.elemSize, 8), 0xffffffffffffffffn);
    assert.equal(le(buf, f.created_ns.offset, 8), 42n);
    assert.equal(le(buf, f.orig_ifindex.offset, 4), 7n);
  });
});

describe('C size asserts', () => {
  it('match the BTF sizes of the same structs', () => {
    const includeDir = join(ROOT, 'bpf/include');
    const asserted = new Map<string, number>();
    for (const file of readdirSync(includeDir).filter((n) => n.endsWith('.h'))) {
      const text = readFileSync(join(includeDir, file), 'utf8');
      for (const m of text.matchAll(/_Static_assert\s*\(\s*sizeof\s*\(\s*struct\s+(\w+)\s*\)\s*==\s*(\d+)/g))
        asserted.set(m[1]!, Number(m[2]));
    }
    assert.ok(asserted.size >= 6, `found only ${asserted.size} size asserts in bpf/include`);
    const layouts: Record<string, { size: number }> = STRUCT_LAYOUTS;
    for (const [name, size] of asserted) {
      const layout = layouts[name];
      assert.ok(layout, `struct ${name} has a size assert but no generated layout: add it to tools/gen-layout.ts`);
      assert.equal(layout.size, size, `struct ${name}`);
    }
  });
});
