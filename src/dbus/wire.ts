/**
 * D-Bus wire marshalling (specification "Message Protocol / Marshaling"): every value is aligned
 * to its natural boundary counted from the start of the message, strings are length-prefixed and
 * NUL-terminated, variants carry their own signature. We write little-endian; we read either order
 * because the bus forwards messages in the sender's byte order.
 */
import { DBusError } from './errors.js';

/** A variant as we hand it around: its signature and the decoded value. */
export interface Variant {
  readonly signature: string;
  readonly value: unknown;
}

const MAX_ARRAY_BYTES = 64 * 1024 * 1024;
const MAX_DEPTH = 64;
const OBJECT_PATH = /^\/$|^(\/[A-Za-z0-9_]+)+$/;

function protocol(message: string): DBusError {
  return new DBusError('dbus_protocol', `dbus: ${message}`);
}

const ALIGN: Readonly<Record<string, number>> = {
  y: 1, b: 4, n: 2, q: 2, i: 4, u: 4, x: 8, t: 8, d: 8, h: 4, s: 4, o: 4, g: 1, v: 1, a: 4, '(': 8, '{': 8,
};

function alignOf(sig: string): number {
  const a = ALIGN[sig[0] ?? ''];
  if (a === undefined) throw protocol(`unsupported type code "${sig[0] ?? ''}" in signature`);
  return a;
}

/** Splits a signature into its single complete types ("su(ss)" → ["s","u","(ss)"]). */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < sig.length) {
    const end = completeTypeEnd(sig, i, 0);
    out.push(sig.slice(i, end));
    i = end;
  }
  return out;
}

function completeTypeEnd(sig: string, i: number, depth: number): number {
  if (depth > MAX_DEPTH) throw protocol('signature nests too deeply');
  const c = sig[i];
  if (c === undefined) throw protocol(`truncated signature "${sig}"`);
  if (c === 'a') return completeTypeEnd(sig, i + 1, depth + 1);
  if (c === '(' || c === '{') {
    const close = c === '(' ? ')' : '}';
    let j = i + 1;
    while (sig[j] !== close) {
      if (j >= sig.length) throw protocol(`unterminated container in signature "${sig}"`);
      j = completeTypeEnd(sig, j, depth + 1);
    }
    return j + 1;
  }
  if (ALIGN[c] === undefined || c === ')' || c === '}') throw protocol(`invalid signature "${sig}"`);
  return i + 1;
}

/** Grows as needed; offsets are relative to the start of the message part being written. */
export class WireWriter {
  private buf = Buffer.alloc(256);
  private len = 0;

  get length(): number {
    return this.len;
  }

  toBuffer(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  align(n: number): void {
    const pad = (n - (this.len % n)) % n;
    this.reserve(pad);
    this.buf.fill(0, this.len, this.len + pad);
    this.len += pad;
  }

  byte(v: number): void {
    this.reserve(1);
    this.buf.writeUInt8(v, this.len);
    this.len += 1;
  }

  uint32(v: number): void {
    this.align(4);
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }

  /** Patches a uint32 written earlier (array and body lengths are known only afterwards). */
  patchUint32(at: number, v: number): void {
    this.buf.writeUInt32LE(v, at);
  }

  private raw(bytes: Buffer): void {
    this.reserve(bytes.length);
    bytes.copy(this.buf, this.len);
    this.len += bytes.length;
  }

  string(v: string): void {
    const bytes = Buffer.from(v, 'utf8');
    if (bytes.includes(0)) throw protocol('strings must not contain NUL');
    this.uint32(bytes.length);
    this.raw(bytes);
    this.byte(0);
  }

  signature(v: string): void {
    if (v.length > 255) throw protocol('signature longer than 255 bytes');
    splitSignature(v);
    this.byte(v.length);
    this.raw(Buffer.from(v, 'ascii'));
    this.byte(0);
  }

  /** Writes one value of a single complete type. */
  value(sig: string, v: unknown): void {
    const c = sig[0];
    switch (c) {
      case 'y': return this.byte(num(v, 0, 0xff));
      case 'b': return this.uint32(v === true ? 1 : v === false ? 0 : badValue(sig, v));
      case 'n': this.align(2); this.reserve(2); this.buf.writeInt16LE(num(v, -0x8000, 0x7fff), this.len); this.len += 2; return;
      case 'q': this.align(2); this.reserve(2); this.buf.writeUInt16LE(num(v, 0, 0xffff), this.len); this.len += 2; return;
      case 'i': this.align(4); this.reserve(4); this.buf.writeInt32LE(num(v, -0x80000000, 0x7fffffff), this.len); this.len += 4; return;
      case 'u': case 'h': return this.uint32(num(v, 0, 0xffffffff));
      case 'x': this.align(8); this.reserve(8); this.buf.writeBigInt64LE(BigInt(v as bigint), this.len); this.len += 8; return;
      case 't': this.align(8); this.reserve(8); this.buf.writeBigUInt64LE(BigInt(v as bigint), this.len); this.len += 8; return;
      case 'd': this.align(8); this.reserve(8); this.buf.writeDoubleLE(Number(v), this.len); this.len += 8; return;
      case 's': return this.string(typeof v === 'string' ? v : badValue(sig, v));
      case 'o':
        if (typeof v !== 'string' || !OBJECT_PATH.test(v)) throw protocol(`invalid object path ${JSON.stringify(v)}`);
        return this.string(v);
      case 'g': return this.signature(typeof v === 'string' ? v : badValue(sig, v));
      case 'v': {
        const variant = v as Variant;
        if (splitSignature(variant.signature).length !== 1) throw protocol('a variant holds exactly one complete type');
        this.signature(variant.signature);
        return this.value(variant.signature, variant.value);
      }
      case 'a': {
        const elem = sig.slice(1);
        if (!Array.isArray(v)) badValue(sig, v);
        this.uint32(0);
        const lenAt = this.len - 4;
        this.align(alignOf(elem));
        const start = this.len;
        for (const item of v as unknown[]) this.value(elem, item);
        this.patchUint32(lenAt, this.len - start);
        return;
      }
      case '(': case '{': {
        this.align(8);
        const fields = splitSignature(sig.slice(1, -1));
        const items = v as unknown[];
        if (!Array.isArray(items) || items.length !== fields.length) badValue(sig, v);
        fields.forEach((f, i) => this.value(f, items[i]));
        return;
      }
      default:
        throw protocol(`cannot write type "${sig}"`);
    }
  }
}

function num(v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw protocol(`integer ${String(v)} out of range`);
  return v;
}

function badValue(sig: string, v: unknown): never {
  throw protocol(`value ${JSON.stringify(v)} does not match type "${sig}"`);
}

/** Reads values out of one message; every read is bounds-checked because the peer is not trusted. */
export class WireReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    private readonly littleEndian: boolean,
    /** Where this reader starts; alignment counts from the start of `buf`. */
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  align(n: number): void {
    const pad = (n - (this.pos % n)) % n;
    this.need(pad);
    this.pos += pad;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw protocol('message truncated');
  }

  byte(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }

  uint32(): number {
    this.align(4);
    this.need(4);
    const v = this.littleEndian ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  private fixed<T>(size: number, le: (o: number) => T, be: (o: number) => T): T {
    this.align(size);
    this.need(size);
    const v = this.littleEndian ? le.call(this.buf, this.pos) : be.call(this.buf, this.pos);
    this.pos += size;
    return v;
  }

  string(): string {
    const n = this.uint32();
    this.need(n + 1);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    if (this.buf[this.pos + n] !== 0) throw protocol('string not NUL-terminated');
    this.pos += n + 1;
    return s;
  }

  signature(): string {
    const n = this.byte();
    this.need(n + 1);
    const s = this.buf.toString('ascii', this.pos, this.pos + n);
    this.pos += n + 1;
    return s;
  }

  value(sig: string, depth = 0): unknown {
    if (depth > MAX_DEPTH) throw protocol('value nests too deeply');
    const b = this.buf;
    switch (sig[0]) {
      case 'y': return this.byte();
      case 'b': return this.uint32() !== 0;
      case 'n': return this.fixed(2, b.readInt16LE, b.readInt16BE);
      case 'q': return this.fixed(2, b.readUInt16LE, b.readUInt16BE);
      case 'i': return this.fixed(4, b.readInt32LE, b.readInt32BE);
      case 'u': case 'h': return this.uint32();
      case 'x': return this.fixed(8, b.readBigInt64LE, b.readBigInt64BE);
      case 't': return this.fixed(8, b.readBigUInt64LE, b.readBigUInt64BE);
      case 'd': return this.fixed(8, b.readDoubleLE, b.readDoubleBE);
      case 's': case 'o': return this.string();
      case 'g': return this.signature();
      case 'v': {
        const inner = this.signature();
        if (splitSignature(inner).length !== 1) throw protocol('variant signature is not one complete type');
        return { signature: inner, value: this.value(inner, depth + 1) } satisfies Variant;
      }
      case 'a': {
        const n = this.uint32();
        if (n > MAX_ARRAY_BYTES) throw protocol('array too long');
        const elem = sig.slice(1);
        this.align(alignOf(elem));
        const stop = this.pos + n;
        if (stop > this.end) throw protocol('message truncated');
        const out: unknown[] = [];
        while (this.pos < stop) out.push(this.value(elem, depth + 1));
        if (this.pos !== stop) throw protocol('array contents overrun its length');
        return out;
      }
      case '(': case '{': {
        this.align(8);
        return splitSignature(sig.slice(1, -1)).map((f) => this.value(f, depth + 1));
      }
      default:
        throw protocol(`cannot read type "${sig}"`);
    }
  }

  /** Reads a body of the given (possibly multi-type) signature. */
  values(signature: string): unknown[] {
    return splitSignature(signature).map((t) => this.value(t));
  }
}
