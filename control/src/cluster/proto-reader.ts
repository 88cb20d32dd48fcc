// A minimal protobuf wire reader for the hot receiving path, the
// counterpart of proto-writer.ts. protobufjs's generated decoders build a
// message object per record, per key and per window, plus a Long per uint64;
// for thousands of flow records a second that was most of the receiver's
// CPU. This walks the bytes in place: the caller asks for the next field and
// reads its value as the type it expects, skipping fields it does not know
// (what proto3 requires of a reader, so newer senders stay readable).

export class ProtoReadError extends Error {
  override name = 'ProtoReadError';
}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH = 2;
export const WIRE_FIXED32 = 5;

const TWO_32 = 0x1_0000_0000;

export class ProtoReader {
  /** Field number and wire type of the field next() stepped onto. */
  field = 0;
  wireType = 0;
  private pos: number;
  private readonly end: number;
  /** High 32 bits of the last varintLo(). */
  private hi = 0;

  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    end = buf.length,
  ) {
    this.pos = start;
    this.end = end;
  }

  /** In-place reading, for decoders of a message's fields: the bytes, the position, and seek() past what they read. */
  get buffer(): Uint8Array {
    return this.buf;
  }

  get position(): number {
    return this.pos;
  }

  seek(to: number): void {
    this.pos = to;
  }

  /** Steps onto the next field before `end` (default: the reader's end); false when there is none. */
  next(end = this.end): boolean {
    if (this.pos >= end) return false;
    const tag = this.varintLo();
    this.field = tag >>> 3;
    this.wireType = tag & 7;
    if (this.field === 0) throw new ProtoReadError(`field number 0 at byte ${this.pos}`);
    return true;
  }

  /** A varint field as an unsigned 32-bit number (higher bits dropped, as protobuf does for uint32). */
  uint32(): number {
    this.expect(WIRE_VARINT);
    return this.varintLo();
  }

  /** A varint uint64 as a number: exact below 2^53 (milliseconds, sequence numbers). */
  uint53(): number {
    this.expect(WIRE_VARINT);
    const lo = this.varintLo();
    return this.hi * TWO_32 + lo;
  }

  /** A length-delimited field's content as a view into the buffer (copy what must outlive it). */
  bytes(): Uint8Array {
    const end = this.lengthEnd();
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  /** Enters an embedded message: returns where it ends, to pass to next(). */
  message(): number {
    return this.lengthEnd();
  }

  /** Skips the current field's value. */
  skip(): void {
    this.pos = skipField(this.buf, this.pos, this.end, this.field, this.wireType);
  }

  private expect(wireType: number): void {
    if (this.wireType !== wireType) throw new ProtoReadError(`field ${this.field}: wire type ${this.wireType}, expected ${wireType}`);
  }

  private lengthEnd(): number {
    this.expect(WIRE_LENGTH);
    const len = this.varintLo();
    const end = this.pos + len;
    if (end > this.end) throw new ProtoReadError(`field ${this.field}: ${len} bytes at ${this.pos} run past the end (${this.end})`);
    return end;
  }

  /** Reads a varint (up to 10 bytes); returns its low 32 bits, leaves the high ones in `hi`. */
  private varintLo(): number {
    this.pos = getVarint(this.buf, this.pos, this.end);
    this.hi = varintHi;
    return varintLo;
  }
}

// The primitives below are shared with the in-place record decoder
// (entry-proto.ts), which walks a message's bytes without a reader object.

/** Low and high 32 bits of the varint getVarint read last. */
export let varintLo = 0;
export let varintHi = 0;

/** Reads the varint at buf[p..] (before end) into varintLo/varintHi; returns the position after it. */
export function getVarint(buf: Uint8Array, p: number, end: number): number {
  let lo = 0;
  let hi = 0;
  let b = 0;
  for (let shift = 0; ; shift += 7) {
    if (p >= end) throw new ProtoReadError(`varint truncated at byte ${p}`);
    b = buf[p++]!;
    if (shift < 28) lo |= (b & 127) << shift;
    else if (shift === 28) {
      lo |= (b & 15) << 28;
      hi = (b & 127) >>> 4;
    } else if (shift < 70) hi |= (b & 127) << (shift - 32);
    else throw new ProtoReadError(`varint longer than 10 bytes at byte ${p - 1}`);
    if (b < 128) break;
  }
  varintLo = lo >>> 0;
  varintHi = hi >>> 0;
  return p;
}

/** Skips the value of a field the reader does not know; returns the position after it. */
export function skipField(buf: Uint8Array, p: number, end: number, field: number, wireType: number): number {
  let next: number;
  switch (wireType) {
    case WIRE_VARINT:
      return getVarint(buf, p, end);
    case WIRE_FIXED64:
      next = p + 8;
      break;
    case WIRE_LENGTH:
      p = getVarint(buf, p, end);
      next = p + varintLo + varintHi * TWO_32;
      break;
    case WIRE_FIXED32:
      next = p + 4;
      break;
    default:
      throw new ProtoReadError(`field ${field}: wire type ${wireType} is not supported`);
  }
  if (next > end) throw new ProtoReadError(`field ${field}: truncated at byte ${p}`);
  return next;
}
