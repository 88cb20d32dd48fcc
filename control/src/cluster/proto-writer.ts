// A minimal protobuf wire writer for the hot replication path. protobufjs's
// generic Writer queues one operation object per field and needs plain
// objects (and Long pairs for uint64) as input; for thousands of flow records
// a second that allocation dominated the sync's CPU and GC time. This writes
// varints and length-delimited fields straight into one growing buffer that
// is reused between messages. The bytes are ordinary proto3 wire format,
// decodable by any protobuf implementation.

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const U32_MASK = 0xffff_ffffn;
const TWO_32 = 0x1_0000_0000;

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

  /** A uint32 / enum field; zero (the proto3 default) is omitted. */
  uint32(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, 0);
    this.varint32(v >>> 0);
  }

  /** A uint64 field below 2^53 (milliseconds); zero is omitted. */
  uint53(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, 0);
    this.varintNumber(v);
  }

  /** A uint64 field; zero is omitted. */
  uint64(field: number, v: bigint): void {
    if (v === 0n) return;
    this.tag(field, 0);
    if (v <= MAX_SAFE) this.varintNumber(Number(v));
    else this.varint64(Number(v & U32_MASK), Number((v >> 32n) & U32_MASK));
  }

  bytes(field: number, v: Uint8Array): void {
    this.tag(field, 2);
    this.varint32(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  /**
   * Opens an embedded message (length-delimited) field; pass the result to
   * end() once its content is written.
   */
  begin(field: number): number {
    this.tag(field, 2);
    this.ensure(1);
    // one byte reserved for the length, the common case; end() widens it
    return this.pos++;
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

  private tag(field: number, wireType: number): void {
    this.varint32(((field << 3) | wireType) >>> 0);
  }

  private varint32(v: number): void {
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    while (v > 127) {
      b[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** A non-negative integer below 2^53 as a varint. */
  private varintNumber(v: number): void {
    if (v < TWO_32) {
      this.varint32(v);
      return;
    }
    this.varint64(v % TWO_32, Math.floor(v / TWO_32));
  }

  /** A varint of the 64-bit value hi·2^32 + lo (both unsigned 32-bit). */
  private varint64(lo: number, hi: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
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

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}
