// Writes control/src/gen/layout.ts to stdout from a built BPF object: the
// layout of every struct shared with the controller, the shared enums, the
// map and program names and the .rodata offsets of load-time settings.
// The C headers stay the single source of truth; the TypeScript side never
// copies a number from them by hand.
//
// Usage: node --import tsx tools/gen-layout.ts build/syncwall.bpf.o > control/src/gen/layout.ts
//
// Types and names come from the object's BTF (`bpftool -j btf dump file`).
// Two facts BTF of an unloaded object does not hold come from its ELF
// symbol table (`llvm-readelf`): which section a function lives in (BTF FUNC
// has a linkage, not a section) and where a variable sits in .rodata (clang
// leaves DATASEC offsets at 0 until libbpf fixes them up at open).

import { execFileSync } from 'node:child_process';

const REQUIRED_STRUCTS = [
  'flow_key',
  'tcp_window',
  'flow_entry',
  'punt_meta',
  'punt_small',
  'punt_full',
  'state_event',
  'dp_config',
  'punt_bucket',
  'bucket_owner',
  'cluster_addr',
  'iface_info',
] as const;

const REQUIRED_ENUMS = [
  'sw_family',
  'flow_state',
  'flow_flag',
  'helper_id',
  'tcp_window_flag',
  'dp_config_flag',
  'event_type',
  'sw_counter',
] as const;

const REQUIRED_RODATA_VARS = ['sw_cfg'] as const;

class LayoutGenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LayoutGenError';
  }
}

interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
  bitfield_size?: number;
}

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BtfMember[];
  values?: { name: string; val: number }[];
  vars?: { type_id: number; offset: number; size: number }[];
}

interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  type: string;
  binding: string;
  section: string;
}

interface Field {
  offset: number;
  size: number;
  elemSize?: number;
  count?: number;
  struct?: string;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  } catch (err) {
    throw new LayoutGenError(`${cmd} ${args.join(' ')} failed`, { cause: err });
  }
}

function readBtf(objPath: string): Map<number, BtfType> {
  const dump = JSON.parse(run('bpftool', ['-j', 'btf', 'dump', 'file', objPath])) as { types: BtfType[] };
  return new Map(dump.types.map((t) => [t.id, t]));
}

function readSymbols(objPath: string): ElfSymbol[] {
  type Named = { Value: string | number };
  type RawSymbol = { Symbol: { Name: Named; Value: number; Size: number; Type: Named; Binding: Named; Section: Named } };
  const out = JSON.parse(run('llvm-readelf', ['--elf-output-style=JSON', '--symbols', objPath])) as Record<
    string,
    { Symbols: RawSymbol[] }
  >[];
  const file = Object.values(out[0] ?? {})[0];
  if (!file) throw new LayoutGenError(`llvm-readelf printed no symbol table for ${objPath}`);
  return file.Symbols.map(({ Symbol: s }) => ({
    name: String(s.Name.Value),
    value: s.Value,
    size: s.Size,
    type: String(s.Type.Value),
    binding: String(s.Binding.Value),
    section: String(s.Section.Value),
  }));
}

class Btf {
  constructor(private readonly types: Map<number, BtfType>) {}

  get(id: number): BtfType {
    const t = this.types.get(id);
    if (!t) throw new LayoutGenError(`BTF type id ${id} is referenced but not defined`);
    return t;
  }

  /** The type behind typedefs and qualifiers. */
  resolve(id: number): BtfType {
    let t = this.get(id);
    while (['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = this.get(t.type_id!);
    return t;
  }

  sizeOf(id: number): number {
    const t = this.resolve(id);
    switch (t.kind) {
      case 'INT':
      case 'ENUM':
      case 'ENUM64':
      case 'STRUCT':
      case 'UNION':
        return t.size!;
      case 'PTR':
        return 8;
      case 'ARRAY':
        return this.sizeOf(t.type_id!) * t.nr_elems!;
      default:
        throw new LayoutGenError(`cannot size BTF ${t.kind} ${t.name} (id ${t.id})`);
    }
  }

  /** The one named type of a kind; a second definition with another shape is an error. */
  named(kind: string, name: string): BtfType | undefined {
    const found = [...this.types.values()].filter((t) => t.kind === kind && t.name === name);
    const [first, ...rest] = found;
    for (const other of rest) {
      if (JSON.stringify({ ...other, id: 0 }) !== JSON.stringify({ ...first, id: 0 }))
        throw new LayoutGenError(`BTF has two different definitions of ${kind} ${name}`);
    }
    return first;
  }

  fieldOf(member: BtfMember, owner: string): Field {
    if (member.bitfield_size || member.bits_offset % 8 !== 0)
      throw new LayoutGenError(`${owner}.${member.name} is a bitfield; shared structs must not use bitfields`);
    const field: Field = { offset: member.bits_offset / 8, size: this.sizeOf(member.type_id) };
    let t = this.resolve(member.type_id);
    if (t.kind === 'ARRAY') {
      field.elemSize = this.sizeOf(t.type_id!);
      field.count = t.nr_elems!;
      t = this.resolve(t.type_id!);
    }
    if (t.kind === 'STRUCT') field.struct = t.name;
    return field;
  }
}

function pascal(cName: string): string {
  return cName.replace(/(^|_)([a-z0-9])/g, (_m, _sep: string, c: string) => c.toUpperCase());
}

function fieldLiteral(f: Field): string {
  const parts = [`offset: ${f.offset}`, `size: ${f.size}`];
  if (f.count !== undefined) parts.push(`elemSize: ${f.elemSize}`, `count: ${f.count}`);
  if (f.struct !== undefined) parts.push(`struct: '${f.struct}'`);
  return `{ ${parts.join(', ')} }`;
}

function emitStructs(btf: Btf, out: string[]): Map<string, Map<string, Field>> {
  const all = new Map<string, Map<string, Field>>();
  for (const name of REQUIRED_STRUCTS) {
    const t = btf.named('STRUCT', name);
    if (!t) throw new LayoutGenError(`struct ${name} is missing from the object's BTF`);
    const fields = new Map(t.members!.map((m) => [m.name, btf.fieldOf(m, name)]));
    all.set(name, fields);
    out.push(`/** struct ${name} */`, `export const ${pascal(name)}Layout = {`, `  size: ${t.size},`, '  fields: {');
    for (const [fname, f] of fields) out.push(`    ${fname}: ${fieldLiteral(f)},`);
    out.push('  },', '} as const;', '');
  }
  out.push('/** Every shared struct by its C name. */', 'export const STRUCT_LAYOUTS = {');
  for (const name of REQUIRED_STRUCTS) out.push(`  ${name}: ${pascal(name)}Layout,`);
  out.push('} as const;', '');
  return all;
}

function emitEnums(btf: Btf, out: string[]): void {
  for (const name of REQUIRED_ENUMS) {
    const t = btf.named('ENUM', name) ?? btf.named('ENUM64', name);
    if (!t) throw new LayoutGenError(`enum ${name} is missing from the object's BTF (is it referenced by the program?)`);
    const id = pascal(name);
    out.push(`/** enum ${name} */`, `export const ${id} = {`);
    for (const v of t.values!) out.push(`  ${v.name}: ${v.val},`);
    out.push('} as const;', `export type ${id} = (typeof ${id})[keyof typeof ${id}];`, '');
  }
}

function emitPuntSizes(structs: Map<string, Map<string, Field>>, out: string[]): void {
  const dataCount = (name: string): number => {
    const data = structs.get(name)?.get('data');
    if (data?.count === undefined || data.elemSize !== 1)
      throw new LayoutGenError(`struct ${name} has no byte array "data"`);
    return data.count;
  };
  out.push(
    '/** Packet bytes a full punt record carries (struct punt_full data). */',
    `export const SW_PUNT_DATA_MAX = ${dataCount('punt_full')};`,
    '/** Packet bytes a small punt record carries (struct punt_small data). */',
    `export const SW_PUNT_DATA_SMALL = ${dataCount('punt_small')};`,
    '',
  );
}

function emitNames(btf: Btf, symbols: ElfSymbol[], out: string[]): void {
  const mapsSec = btf.named('DATASEC', '.maps');
  if (!mapsSec) throw new LayoutGenError('the object has no .maps section in its BTF');
  const maps = mapsSec.vars!.map((v) => btf.get(v.type_id).name).sort();
  out.push('/** Map names (BTF DATASEC .maps). */', 'export const MapName = {');
  for (const m of maps) out.push(`  ${m}: '${m}',`);
  out.push('} as const;', 'export type MapName = (typeof MapName)[keyof typeof MapName];', '');

  const isXdp = (sec: string): boolean => sec === 'xdp' || sec.startsWith('xdp.') || sec.startsWith('xdp/');
  const progs = symbols.filter((s) => s.type === 'Function' && s.binding === 'Global' && isXdp(s.section));
  if (progs.length === 0) throw new LayoutGenError('the object has no XDP program');
  out.push('/** XDP program names (global functions in xdp sections). */', 'export const ProgName = {');
  for (const p of progs.map((s) => s.name).sort()) out.push(`  ${p}: '${p}',`);
  out.push('} as const;', 'export type ProgName = (typeof ProgName)[keyof typeof ProgName];', '');

  out.push('/** Offsets of load-time settings inside the .rodata map value. */', 'export const RodataVar = {');
  for (const name of REQUIRED_RODATA_VARS) {
    const sym = symbols.find((s) => s.name === name && s.section === '.rodata' && s.type === 'Object');
    if (!sym) throw new LayoutGenError(`.rodata variable ${name} is missing from the object`);
    out.push(`  ${name}: { offset: ${sym.value}, size: ${sym.size} },`);
  }
  out.push('} as const;');
}

function generate(objPath: string): string {
  const btf = new Btf(readBtf(objPath));
  const symbols = readSymbols(objPath);
  const out = [`// Code generated by tools/gen-layout.ts from ${objPath}; DO NOT EDIT.`, ''];
  const structs = emitStructs(btf, out);
  emitEnums(btf, out);
  emitPuntSizes(structs, out);
  emitNames(btf, symbols, out);
  return out.join('\n') + '\n';
}

const objPath = process.argv[2];
if (!objPath) {
  process.stderr.write('usage: gen-layout.ts <bpf object>\n');
  process.exit(2);
}
try {
  process.stdout.write(generate(objPath));
} catch (err) {
  process.stderr.write(`gen-layout: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof Error && err.cause) process.stderr.write(`  cause: ${String(err.cause)}\n`);
  process.exit(1);
}
