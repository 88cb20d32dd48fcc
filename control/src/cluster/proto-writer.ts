// A minimal protobuf wire writer for the hot replication path. protobufjs's
// generic Writer queues one operation object per field and needs plain
// objects (and Long pairs for uint64) as input; for thousands of flow records
// a second that allocation dominated the sync's CPU and GC time. This writes
// straight into one growing buffer that is reused between messages: payload
// headers through its field methods, records and keys in place through
// room()/advance() (entry-proto.ts). The bytes are ordinary proto3 wire
// format, decodable by any protobuf implementation.

/** A tag and a uint32 or a length: two varints of up to 5 bytes each. */
const MAX_VARINT_FIELD = 10;

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
    if (v === 0) return;
    this.ensure(MAX_VARINT_FIELD);
    this.varint32(field << 3);
    this.varint32(v >>> 0);
  }

  /**
   * Opens an embedded message (length-delimited) field; pass the result to
   * end() once its content is written.
   */
  begin(field: number): number {
    this.ensure(MAX_VARINT_FIELD);
    this.varint32(((field << 3) | 2) >>> 0);
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
    putVarint(this.buf, lengthAt, len, 0);
  }

  /** An unsigned 32-bit varint; the caller made room. */
  private varint32(v: number): void {
    this.pos = putVarint(this.buf, this.pos, v, 0);
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

/**
 * The varint of hi·2^32 + lo (both unsigned 32-bit) at out[p..]; returns the
 * position after it. Shared with the in-place record encoder (entry-proto.ts).
 */
export function putVarint(out: Uint8Array, p: number, lo: number, hi: number): number {
  while (hi !== 0) {
    out[p++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    out[p++] = (lo & 127) | 128;
    lo >>>= 7;
  }
  out[p++] = lo;
  return p;
}
