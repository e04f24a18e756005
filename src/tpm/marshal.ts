/**
 * Big-endian TPM wire encoding (TCG TPM 2.0 Library, Part 1 "Marshaling"). The Reader is the only
 * way the client looks at bytes from a TPM: every read is bounds-checked against what is left, so a
 * truncated or lying response ends in TpmError('tpm_malformed_response'), never a RangeError.
 */
import { TpmError } from './errors.js';

export class Writer {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  u8(v: number): this {
    return this.push(Buffer.from([v & 0xff]));
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v & 0xffff);
    return this.push(b);
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return this.push(b);
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v | 0);
    return this.push(b);
  }
  bytes(v: Uint8Array): this {
    return this.push(Buffer.from(v));
  }
  /** A TPM2B: 16-bit size, then the bytes. `what` names the field when it does not fit. */
  tpm2b(v: Uint8Array, what: string, max = 0xffff): this {
    if (v.length > max) throw new TpmError('tpm_invalid_argument', `tpm: ${what} is ${v.length} bytes; the TPM takes at most ${max}`);
    return this.u16(v.length).bytes(v);
  }
  /** A TPM2B around a structure another writer built (TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE). */
  sized(inner: Writer, what: string): this {
    return this.tpm2b(inner.finish(), what);
  }
  get size(): number {
    return this.length;
  }
  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
  private push(b: Buffer): this {
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }
}

export class Reader {
  private offset = 0;

  constructor(
    private readonly buf: Buffer,
    /** Where the bytes came from, for messages: "TPM2_Load response". */
    readonly context: string,
  ) {}

  static of(bytes: Uint8Array, context: string): Reader {
    return new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), context);
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }
  get position(): number {
    return this.offset;
  }

  u8(what: string): number {
    return this.take(1, what).readUInt8(0);
  }
  u16(what: string): number {
    return this.take(2, what).readUInt16BE(0);
  }
  u32(what: string): number {
    return this.take(4, what).readUInt32BE(0);
  }
  u64(what: string): bigint {
    return this.take(8, what).readBigUInt64BE(0);
  }
  bytes(n: number, what: string): Buffer {
    return Buffer.from(this.take(n, what));
  }
  /** A TPM2B; `max` is the largest the spec allows for this field (a TPM2B_DIGEST is at most 64). */
  tpm2b(what: string, max = 0xffff): Buffer {
    const n = this.u16(`${what} size`);
    if (n > max) throw this.malformed(`${what} says ${n} bytes, more than the ${max} its type allows`);
    return this.bytes(n, what);
  }
  /** A TPM2B holding a structure: a reader over exactly its bytes. */
  sized(what: string): Reader {
    return new Reader(this.tpm2b(what), `${what} in ${this.context}`);
  }
  /** The bytes from `start` to here, for keeping a structure's wire form as the TPM sent it. */
  slice(start: number): Buffer {
    return Buffer.from(this.buf.subarray(start, this.offset));
  }
  /** A sub-reader over the next `n` bytes. */
  sub(n: number, what: string): Reader {
    return new Reader(this.take(n, what), `${what} in ${this.context}`);
  }
  /** Everything must have been read: trailing bytes mean we and the TPM disagree on the layout. */
  end(): void {
    if (this.remaining !== 0) throw this.malformed(`${this.remaining} unexpected byte(s) at the end`);
  }
  malformed(detail: string): TpmError {
    return new TpmError('tpm_malformed_response', `tpm: malformed ${this.context}: ${detail}`);
  }

  private take(n: number, what: string): Buffer {
    if (n > this.remaining) throw this.malformed(`${what} needs ${n} byte(s) at offset ${this.offset}, only ${this.remaining} left`);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
}
