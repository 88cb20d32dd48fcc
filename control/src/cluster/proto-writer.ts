// A minimal protobuf wire writer for the hot replication path. protobufjs's
// generic Writer queues one operation object per field and needs plain
// objects (and Long pairs for uint64) as input; for thousands of flow records
// a second that allocation dominated the sync's CPU and GC time. This writes
// varints and length-delimited fields straight into one growing buffer that
// is reused between messages. The bytes are ordinary proto3 wire format,
// decodable by any protobuf implementation.

const TWO_32 = 0x1_0000_0000;
/** A tag (up to 5 bytes) and a 64-bit varint (up to 10). */
const MAX_VARINT_FIELD = 15;

export class ProtoWriter {
  private buf = new Uint8Array(64 * 1024);
  private pos = 0;

  /** Starts a new message, dropping what was written. */
  reset(): void {
    this.pos = 0;
  }

  /** A copy of the bytes written since reset (the writer's buffer is reused). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /**
   * In-place writing, for encoders of a bounded run of fields: room for n
   * more bytes at `position`; write them into the returned buffer, then
   * advance() past them.
   */
  room(n: number): Uint8Array {
    this.ensure(n);
    return this.buf;
  }

  get position(): number {
    return this.pos;
  }

  advance(to: number): void {
    this.pos = to;
  }

  /** A uint32 / enum field; zero (the proto3 default) is omitted. */
  uint32(field: number, v: number): void {
    if (v !== 0) this.varintField(field << 3, v >>> 0, 0);
  }

  /** A uint64 field below 2^53 (milliseconds); zero is omitted. */
  uint53(field: number, v: number): void {
    if (v !== 0) this.varintField(field << 3, v % TWO_32, Math.floor(v / TWO_32));
  }

  /** A uint64 field given as its unsigned 32-bit halves (a struct's u64 without BigInt); zero is omitted. */
  uint64(field: number, lo: number, hi: number): void {
    if (lo !== 0 || hi !== 0) this.varintField(field << 3, lo, hi);
  }

  /** A bytes field of v[start, start + length), copied without a subarray view. */
  bytes(field: number, v: Uint8Array, start = 0, length = v.length - start): void {
    this.lengthPrefix(field, length);
    const b = this.buf;
    const p = this.pos;
    for (let i = 0; i < length; i++) b[p + i] = v[start + i]!;
    this.pos = p + length;
  }

  /**
   * Opens an embedded message (length-delimited) field; pass the result to
   * end() once its content is written.
   */
  begin(field: number): number {
    // one byte reserved for the length, the common case; end() widens it
    this.lengthPrefix(field, 0);
    return this.pos - 1;
  }

  end(lengthAt: number): void {
    const start = lengthAt + 1;
    const len = this.pos - start;
    let size = 1;
    for (let v = len >>> 7; v !== 0; v >>>= 7) size++;
    if (size > 1) {
      this.ensure(size - 1);
      this.buf.copyWithin(start + size - 1, start, this.pos);
      this.pos += size - 1;
    }
    let v = len;
    let p = lengthAt;
    while (v > 127) {
      this.buf[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  // The field writers each make one call here, which does all the work
  // (room, tag, value) in place: the sync runs much of a burst before the
  // JIT has optimized it, and a call per byte-level step was most of the
  // cost there.

  /** A varint field: tag (field << 3, wire type 0), then the value hi·2^32 + lo (both unsigned 32-bit). */
  private varintField(tag: number, lo: number, hi: number): void {
    if (this.pos + MAX_VARINT_FIELD > this.buf.length) this.ensure(MAX_VARINT_FIELD);
    const b = this.buf;
    let p = this.pos;
    while (tag > 127) {
      b[p++] = (tag & 127) | 128;
      tag >>>= 7;
    }
    b[p++] = tag;
    while (hi !== 0) {
      b[p++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      b[p++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  /** Tag (wire type 2) and length of a length-delimited field, with room for `length` bytes after them. */
  private lengthPrefix(field: number, length: number): void {
    this.ensure(MAX_VARINT_FIELD + length);
    const b = this.buf;
    let p = this.pos;
    let tag = ((field << 3) | 2) >>> 0;
    while (tag > 127) {
      b[p++] = (tag & 127) | 128;
      tag >>>= 7;
    }
    b[p++] = tag;
    let v = length;
    while (v > 127) {
      b[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}
