/**
 * The SSH wire encoding (RFC 4251 §5) as OpenSSH keys, certificates and signatures use it:
 * uint32 and uint64 big-endian, `string` = uint32 length + bytes, `mpint` = a string holding a
 * two's-complement big-endian integer with no needless leading byte.
 */
export class SSHReader {
  private off = 0;

  constructor(
    private readonly buf: Uint8Array,
    /** What is being read, for messages: "host certificate". */
    private readonly what: string,
  ) {}

  get done(): boolean {
    return this.off >= this.buf.length;
  }

  uint32(): number {
    const b = this.take(4);
    return ((b[0] as number) * 2 ** 24 + ((b[1] as number) << 16) + ((b[2] as number) << 8) + (b[3] as number)) >>> 0;
  }

  uint64(): bigint {
    const hi = BigInt(this.uint32());
    return (hi << 32n) | BigInt(this.uint32());
  }

  bytes(): Uint8Array {
    return this.take(this.uint32());
  }

  string(): string {
    return Buffer.from(this.bytes()).toString('utf8');
  }

  /** An mpint as unsigned big-endian bytes without leading zeros (the keys here are never negative). */
  mpint(): Uint8Array {
    const b = this.bytes();
    if (b.length > 0 && ((b[0] as number) & 0x80) !== 0) throw new Error(`${this.what}: negative integer`);
    let i = 0;
    while (i < b.length && b[i] === 0) i++;
    return b.subarray(i);
  }

  /** The bytes from `start` (an earlier offset) to here, e.g. what a certificate's signature covers. */
  since(start: number): Uint8Array {
    return this.buf.subarray(start, this.off);
  }

  get offset(): number {
    return this.off;
  }

  private take(n: number): Uint8Array {
    if (n > this.buf.length - this.off) throw new Error(`${this.what}: truncated`);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }
}

export function sshString(b: Uint8Array | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** An unsigned big-endian integer as an mpint: leading zeros dropped, one zero added when the top bit is set. */
export function sshMpint(unsigned: Uint8Array): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const v = Buffer.from(unsigned.subarray(i));
  return sshString(v.length > 0 && ((v[0] as number) & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), v]) : v);
}
