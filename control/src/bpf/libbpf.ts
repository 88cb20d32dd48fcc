// The native boundary: every libbpf and libc function syncwall calls is
// declared here, through koffi, and every failure becomes a BpfError naming
// the operation and errno. No other module imports koffi.
//
// libbpf 1.x reports errors as negative errno return values (and NULL plus
// errno for pointer-returning calls); both are turned into exceptions here so
// callers never check return codes.
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';

const libbpf = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name]),
);

/** A failed libbpf or libc call. `code` is the errno name, e.g. 'ENOENT'. */
export class BpfError extends Error {
  readonly op: string;
  readonly errno: number;
  readonly code: string;
  constructor(op: string, errno: number, detail?: string, options?: ErrorOptions) {
    const code = errnoNames.get(errno) ?? `errno ${errno}`;
    super(`${op}${detail ? ` (${detail})` : ''}: ${code}`, options);
    this.name = 'BpfError';
    this.op = op;
    this.errno = errno;
    this.code = code;
  }
}

koffi.opaque('bpf_object');
koffi.opaque('bpf_map');
koffi.opaque('bpf_program');

const fn = {
  objectOpenFile: libbpf.func('bpf_object *bpf_object__open_file(const char *path, void *opts)'),
  objectLoad: libbpf.func('int bpf_object__load(bpf_object *obj)'),
  objectClose: libbpf.func('void bpf_object__close(bpf_object *obj)'),
  findMap: libbpf.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
  findProgram: libbpf.func('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
  mapSetMaxEntries: libbpf.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max)'),
  mapMaxEntries: libbpf.func('uint32_t bpf_map__max_entries(bpf_map *map)'),
  mapSetPinPath: libbpf.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
  mapInitialValue: libbpf.func('void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *size)'),
  mapFd: libbpf.func('int bpf_map__fd(bpf_map *map)'),
  programFd: libbpf.func('int bpf_program__fd(bpf_program *prog)'),
  lookup: libbpf.func('int bpf_map_lookup_elem(int fd, void *key, void *value)'),
  update: libbpf.func('int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)'),
  delete: libbpf.func('int bpf_map_delete_elem(int fd, void *key)'),
  getNextKey: libbpf.func('int bpf_map_get_next_key(int fd, void *key, void *next)'),
  lookupBatch: libbpf.func(
    'int bpf_map_lookup_batch(int fd, void *inBatch, void *outBatch, void *keys, void *values, void *count, void *opts)',
  ),
  updateBatch: libbpf.func('int bpf_map_update_batch(int fd, void *keys, void *values, void *count, void *opts)'),
  deleteBatch: libbpf.func('int bpf_map_delete_batch(int fd, void *keys, void *count, void *opts)'),
  numPossibleCpus: libbpf.func('int libbpf_num_possible_cpus(void)'),
  linkCreate: libbpf.func('int bpf_link_create(int progFd, int targetFd, int attachType, void *opts)'),
  linkUpdate: libbpf.func('int bpf_link_update(int linkFd, int progFd, void *opts)'),
  objPin: libbpf.func('int bpf_obj_pin(int fd, const char *path)'),
  objGet: libbpf.func('int bpf_obj_get(const char *path)'),
  close: libc.func('int close(int fd)'),
  mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
  munmap: libc.func('int munmap(void *addr, size_t length)'),
  ifNameToIndex: libc.func('unsigned int if_nametoindex(const char *name)'),
  sysconf: libc.func('long sysconf(int name)'),
};

/** Throws a BpfError for a libbpf return value < 0 (a negative errno). */
function check(op: string, ret: number, detail?: string): number {
  if (ret < 0) throw new BpfError(op, -ret, detail);
  return ret;
}

function checkPointer<T>(op: string, ptr: T | null, detail?: string): T {
  if (ptr === null) throw new BpfError(op, koffi.errno(), detail);
  return ptr;
}

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1;
export const XDP_FLAGS_SKB_MODE = 1 << 1;
export const XDP_FLAGS_DRV_MODE = 1 << 2;
const BPF_XDP_ATTACH_TYPE = 37;
const ENOENT = osConstants.errno.ENOENT;

/** An ELF object opened by libbpf: configure its maps, then load it. */
export class BpfObject {
  private obj: unknown;
  private readonly path: string;

  private constructor(obj: unknown, path: string) {
    this.obj = obj;
    this.path = path;
  }

  static open(path: string): BpfObject {
    return new BpfObject(checkPointer('bpf_object__open_file', fn.objectOpenFile(path, null), path), path);
  }

  private map(name: string): unknown {
    return checkPointer('bpf_object__find_map_by_name', fn.findMap(this.handle(), name), `${this.path}: ${name}`);
  }

  private handle(): unknown {
    if (this.obj === null) throw new BpfError('bpf_object', osConstants.errno.EBADF, `${this.path} is closed`);
    return this.obj;
  }

  setMapMaxEntries(map: string, n: number): void {
    check('bpf_map__set_max_entries', fn.mapSetMaxEntries(this.map(map), n), `${map}=${n}`);
  }

  mapMaxEntries(map: string): number {
    return fn.mapMaxEntries(this.map(map));
  }

  setMapPinPath(map: string, path: string): void {
    check('bpf_map__set_pin_path', fn.mapSetPinPath(this.map(map), path), `${map} -> ${path}`);
  }

  /** Writable view of the object's .rodata, valid until load(). */
  rodata(): Buffer {
    const size = [0];
    const ptr = checkPointer('bpf_map__initial_value', fn.mapInitialValue(this.map('.rodata'), size), '.rodata');
    return Buffer.from(koffi.view(ptr, Number(size[0])));
  }

  load(): void {
    check('bpf_object__load', fn.objectLoad(this.handle()), this.path);
  }

  mapFd(name: string): number {
    return check('bpf_map__fd', fn.mapFd(this.map(name)), name);
  }

  programFd(name: string): number {
    const prog = checkPointer('bpf_object__find_program_by_name', fn.findProgram(this.handle(), name), name);
    return check('bpf_program__fd', fn.programFd(prog), name);
  }

  close(): void {
    if (this.obj !== null) fn.objectClose(this.obj);
    this.obj = null;
  }
}

export function mapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean {
  const ret = fn.lookup(fd, key, value);
  if (ret === -ENOENT) return false;
  check('bpf_map_lookup_elem', ret);
  return true;
}

export function mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
  check('bpf_map_update_elem', fn.update(fd, key, value, flags));
}

export function mapDelete(fd: number, key: Uint8Array): boolean {
  const ret = fn.delete(fd, key);
  if (ret === -ENOENT) return false;
  check('bpf_map_delete_elem', ret);
  return true;
}

export function mapGetNextKey(fd: number, key: Uint8Array | null, next: Uint8Array): boolean {
  const ret = fn.getNextKey(fd, key, next);
  if (ret === -ENOENT) return false;
  check('bpf_map_get_next_key', ret);
  return true;
}

// struct bpf_map_batch_opts { size_t sz; __u64 elem_flags; __u64 flags; }
function batchOpts(elemFlags: number): Buffer {
  const opts = Buffer.alloc(24);
  opts.writeBigUInt64LE(24n, 0);
  opts.writeBigUInt64LE(BigInt(elemFlags), 8);
  return opts;
}
const plainBatchOpts = batchOpts(0);
const batchCount = new Uint32Array(1);

/**
 * One bpf_map_lookup_batch step. Pass inBatch null to start; feed outBatch
 * back as inBatch to continue. `done` is true when the map is exhausted
 * (the count of this last step may still be > 0).
 */
export function mapLookupBatch(
  fd: number,
  inBatch: Uint8Array | null,
  outBatch: Uint8Array,
  keys: Uint8Array,
  values: Uint8Array,
  maxCount: number,
): { count: number; done: boolean } {
  batchCount[0] = maxCount;
  const ret = fn.lookupBatch(fd, inBatch, outBatch, keys, values, batchCount, plainBatchOpts);
  if (ret === -ENOENT) return { count: batchCount[0]!, done: true };
  check('bpf_map_lookup_batch', ret);
  return { count: batchCount[0]!, done: false };
}

export function mapUpdateBatch(fd: number, keys: Uint8Array, values: Uint8Array, count: number, flags = BPF_ANY): void {
  if (count === 0) return;
  batchCount[0] = count;
  const opts = flags === 0 ? plainBatchOpts : batchOpts(flags);
  check('bpf_map_update_batch', fn.updateBatch(fd, keys, values, batchCount, opts), `${batchCount[0]} of ${count} applied`);
}

/** Deletes count keys; returns how many were deleted before the first missing key stopped the batch. */
export function mapDeleteBatch(fd: number, keys: Uint8Array, count: number): number {
  if (count === 0) return 0;
  batchCount[0] = count;
  const ret = fn.deleteBatch(fd, keys, batchCount, plainBatchOpts);
  if (ret === -ENOENT) return batchCount[0]!;
  check('bpf_map_delete_batch', ret);
  return batchCount[0]!;
}

let possibleCpus = 0;
export function numPossibleCpus(): number {
  if (possibleCpus === 0) possibleCpus = check('libbpf_num_possible_cpus', fn.numPossibleCpus());
  return possibleCpus;
}

export interface TestRunOptions {
  data: Uint8Array;
  dataOut?: Uint8Array;
  ctx?: Uint8Array;
  repeat?: number;
  flags?: number;
  batchSize?: number;
}

export interface TestRunResult {
  retval: number;
  dataSizeOut: number;
  durationNs: number;
}

const TestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});
const testRunFn = libbpf.func('bpf_prog_test_run_opts', 'int', ['int', koffi.inout(koffi.pointer(TestRunOpts))]);

/** Runs a program on one packet with BPF_PROG_TEST_RUN. */
export function progTestRun(progFd: number, o: TestRunOptions): TestRunResult {
  const opts = {
    sz: koffi.sizeof(TestRunOpts),
    data_in: o.data,
    data_out: o.dataOut ?? null,
    data_size_in: o.data.length,
    // libbpf writes the output size back: always reset it to the buffer's capacity.
    data_size_out: o.dataOut?.length ?? 0,
    ctx_in: o.ctx ?? null,
    ctx_out: null,
    ctx_size_in: o.ctx?.length ?? 0,
    ctx_size_out: 0,
    retval: 0,
    repeat: o.repeat ?? 1,
    duration: 0,
    flags: o.flags ?? 0,
    cpu: 0,
    batch_size: o.batchSize ?? 0,
  };
  check('bpf_prog_test_run_opts', testRunFn(progFd, opts));
  return { retval: opts.retval, dataSizeOut: opts.data_size_out, durationNs: opts.duration };
}

/** Byte offsets of the bpf_test_run_opts fields progTestRunInPlace writes or reads. */
const TEST_RUN_OFF = Object.fromEntries(
  ['sz', 'data_in', 'data_size_in', 'data_size_out', 'ctx_in', 'ctx_size_in', 'ctx_size_out', 'retval', 'repeat', 'flags'].map((f) => [f, koffi.offsetof(TestRunOpts, f)]),
) as Record<'sz' | 'data_in' | 'data_size_in' | 'data_size_out' | 'ctx_in' | 'ctx_size_in' | 'ctx_size_out' | 'retval' | 'repeat' | 'flags', number>;
const IN_PLACE_MAX_DATA = 4096;
const IN_PLACE_MAX_CTX = 64;

/**
 * Native memory for progTestRunInPlace: the options struct, the frame and the
 * context, allocated once for the process. Calls are synchronous on the one
 * JS thread, so one set serves every caller.
 */
class InPlaceTestRun {
  readonly opts = koffi.alloc(TestRunOpts, 1);
  readonly fields = new DataView(koffi.view(this.opts, koffi.sizeof(TestRunOpts)));
  private readonly dataPtr = koffi.alloc('uint8_t', IN_PLACE_MAX_DATA);
  private readonly ctxPtr = koffi.alloc('uint8_t', IN_PLACE_MAX_CTX);
  readonly data = new Uint8Array(koffi.view(this.dataPtr, IN_PLACE_MAX_DATA));
  readonly ctx = new Uint8Array(koffi.view(this.ctxPtr, IN_PLACE_MAX_CTX));

  constructor() {
    new Uint8Array(this.fields.buffer).fill(0);
    this.fields.setBigUint64(TEST_RUN_OFF.sz, BigInt(koffi.sizeof(TestRunOpts)), true);
    this.fields.setBigUint64(TEST_RUN_OFF.data_in, BigInt(koffi.address(this.dataPtr)), true);
    this.fields.setBigUint64(TEST_RUN_OFF.ctx_in, BigInt(koffi.address(this.ctxPtr)), true);
    this.fields.setInt32(TEST_RUN_OFF.repeat, 1, true);
  }
}
let inPlace: InPlaceTestRun | undefined;
const testRunRawFn = libbpf.func('int bpf_prog_test_run_opts(int progFd, void *opts)');

/**
 * progTestRun of one run for a hot path (re-injecting first packets: one
 * call each). progTestRun converts its options struct from and back to a JS
 * object, which costs several µs per call; this copies the frame and context
 * into native buffers allocated once and passes a pointer. Returns the
 * program's return value. Frames over 4096 bytes take the progTestRun path.
 */
export function progTestRunInPlace(progFd: number, data: Uint8Array, ctx: Uint8Array, flags: number): number {
  if (data.length > IN_PLACE_MAX_DATA || ctx.length > IN_PLACE_MAX_CTX) return progTestRun(progFd, { data, ctx, flags }).retval;
  const run = (inPlace ??= new InPlaceTestRun());
  run.data.set(data);
  run.ctx.set(ctx);
  run.fields.setUint32(TEST_RUN_OFF.data_size_in, data.length, true);
  run.fields.setUint32(TEST_RUN_OFF.ctx_size_in, ctx.length, true);
  // libbpf writes the output sizes back, and the kernel takes them as buffer capacities: there are no output buffers.
  run.fields.setUint32(TEST_RUN_OFF.data_size_out, 0, true);
  run.fields.setUint32(TEST_RUN_OFF.ctx_size_out, 0, true);
  run.fields.setUint32(TEST_RUN_OFF.flags, flags, true);
  check('bpf_prog_test_run_opts', testRunRawFn(progFd, run.opts));
  return run.fields.getUint32(TEST_RUN_OFF.retval, true);
}

/** Attaches an XDP program to an interface as a BPF link; returns the link fd. */
export function xdpLinkCreate(progFd: number, ifindex: number, xdpFlags: number): number {
  // struct bpf_link_create_opts, truncated after `flags`: libbpf treats the rest as unset.
  const opts = Buffer.alloc(16);
  opts.writeBigUInt64LE(16n, 0);
  opts.writeUInt32LE(xdpFlags, 8);
  return check('bpf_link_create', fn.linkCreate(progFd, ifindex, BPF_XDP_ATTACH_TYPE, opts), `ifindex ${ifindex}`);
}

/** Atomically replaces the program behind a link. */
export function linkUpdate(linkFd: number, progFd: number): void {
  check('bpf_link_update', fn.linkUpdate(linkFd, progFd, null));
}

export function objPin(fd: number, path: string): void {
  check('bpf_obj_pin', fn.objPin(fd, path), path);
}

export function objGet(path: string): number {
  return check('bpf_obj_get', fn.objGet(path), path);
}

export function closeFd(fd: number): void {
  if (fn.close(fd) < 0) throw new BpfError('close', koffi.errno(), `fd ${fd}`);
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;

export interface Mapping {
  readonly buffer: ArrayBuffer;
  readonly length: number;
  readonly address: unknown;
}

/** Maps `length` bytes of a BPF map (ring buffer, array) into an ArrayBuffer. */
export function mmapFd(fd: number, length: number, writable: boolean, offset: number): Mapping {
  const prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  const address = fn.mmap(null, length, prot, MAP_SHARED, fd, offset);
  if (address === null || address === MAP_FAILED) {
    throw new BpfError('mmap', koffi.errno(), `fd ${fd}, ${length} bytes at ${offset}`);
  }
  return { buffer: koffi.view(address, length), length, address };
}

export function munmap(m: Mapping): void {
  if (fn.munmap(m.address, m.length) < 0) throw new BpfError('munmap', koffi.errno());
}

/**
 * Calls onReadable whenever fd becomes readable (ring buffer has data),
 * from the event loop. Exceptions thrown by the callback are passed to
 * onError: thrown inside koffi's poll callback they would surface late.
 */
export function pollReadable(fd: number, onReadable: () => void, onError: (err: unknown) => void): { stop(): void } {
  const handle = koffi.node.poll(fd, { readable: true }, () => {
    try {
      onReadable();
    } catch (err) {
      onError(err);
    }
  });
  return {
    stop() {
      handle.close();
    },
  };
}

export function ifNameToIndex(name: string): number {
  const index = fn.ifNameToIndex(name);
  if (index === 0) throw new BpfError('if_nametoindex', koffi.errno() || osConstants.errno.ENODEV, name);
  return index;
}

const SC_PAGESIZE = 30;
export function pageSize(): number {
  return fn.sysconf(SC_PAGESIZE);
}
