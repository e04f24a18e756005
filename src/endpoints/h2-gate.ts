/**
 * The gate's scanner (see h2-authority-filter.ts): reads a connection's first bytes and decides
 * whether it goes straight to gRPC or through the :authority filter.
 */
import { DEFAULT_H2_LIMITS, H2Code, H2ProtocolError, type H2Limits } from './h2-limits.js';
import { BoundedHpackDecoder } from './hpack-bounded.js';
import { scanAuthority } from './hpack-authority.js';
import { ACK, CONTINUATION, END_HEADERS, HEADERS, PADDED, PREFACE, PRIORITY, SETTINGS, VALID_AUTHORITY, frameOf } from './h2-frames.js';

/** The gate's SETTINGS: empty, so the client keeps the defaults until the gRPC session's own SETTINGS arrive. */
export const GATE_SETTINGS = frameOf(SETTINGS, 0, 0, Buffer.alloc(0));
/** Most octets the gate buffers before it leaves the connection to the filter. */
const GATE_MAX_BYTES = 64 * 1024;

/** What the gate does with a connection, and the bytes to replay into that path. */
export type GateDecision =
  | { readonly path: 'wait' }
  /** Straight to gRPC: `bytes` go back into the client's socket (the gate's SETTINGS ACK removed). */
  | { readonly path: 'direct'; readonly bytes: Buffer }
  /** Through the filter: `bytes` are its first input; `ackPending` when the gate's SETTINGS ACK is still to come (the filter drops it). */
  | { readonly path: 'filter'; readonly bytes: Buffer; readonly ackPending: boolean };

/**
 * Reads a connection's first bytes up to its first complete header block and the ACK of the
 * gate's SETTINGS, without changing them (except for cutting out that ACK), and decides where
 * the connection goes. The same limits as the filter apply to what it reads: frame size,
 * header block size, and the header list as decoded. Pure: bytes in, decision out; throws
 * H2ProtocolError as the filter would.
 */
export class FirstRequestScanner {
  private buf: Buffer = Buffer.alloc(0);
  /** Parse position in `buf`. */
  private at = 0;
  private prefaceSeen = false;
  private ack: [number, number] | undefined;
  private block: { streamId: number; octets: number; fragments: Buffer[] } | undefined;
  /** The first request's :authority once its block is decoded; null when it has none. */
  private authority: string | null | undefined;

  constructor(
    private readonly limits: H2Limits = DEFAULT_H2_LIMITS,
    private readonly maxBytes = GATE_MAX_BYTES,
  ) {}

  push(chunk: Buffer): GateDecision {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.prefaceSeen) {
      const n = Math.min(this.buf.length, PREFACE.length);
      // Not HTTP/2 with prior knowledge: nothing to rewrite; gRPC refuses it as it would anyway.
      if (!this.buf.subarray(0, n).equals(PREFACE.subarray(0, n))) return { path: 'direct', bytes: this.buf };
      if (this.buf.length < PREFACE.length) return { path: 'wait' };
      this.prefaceSeen = true;
      this.at = PREFACE.length;
    }
    while (this.buf.length - this.at >= 9 && (this.authority === undefined || this.ack === undefined)) {
      const len = this.buf.readUIntBE(this.at, 3);
      if (len > this.limits.maxFrameSize) {
        throw new H2ProtocolError(`frame of ${len} octets exceeds SETTINGS_MAX_FRAME_SIZE ${this.limits.maxFrameSize}`, H2Code.FRAME_SIZE_ERROR);
      }
      if (this.buf.length - this.at < 9 + len) break;
      this.frame(this.at, len);
      this.at += 9 + len;
    }
    if (this.authority !== undefined) {
      const valid = this.authority === null || VALID_AUTHORITY.test(this.authority);
      if (!valid) return this.toFilter();
      if (this.ack !== undefined) return { path: 'direct', bytes: this.withoutAck() };
    }
    if (this.buf.length > this.maxBytes) return this.toFilter();
    return { path: 'wait' };
  }

  /** The decision when the gate stops waiting (no request in time): the filter, which handles anything. */
  toFilter(): GateDecision {
    return { path: 'filter', bytes: this.withoutAck(), ackPending: this.ack === undefined };
  }

  private withoutAck(): Buffer {
    if (!this.ack) return this.buf;
    return Buffer.concat([this.buf.subarray(0, this.ack[0]), this.buf.subarray(this.ack[1])]);
  }

  private frame(at: number, len: number): void {
    const type = this.buf[at + 3]!;
    const flags = this.buf[at + 4]!;
    const streamId = this.buf.readUInt32BE(at + 5) & 0x7fffffff;
    if (type === SETTINGS && flags & ACK && this.ack === undefined) {
      this.ack = [at, at + 9 + len];
      return;
    }
    // Only the first header block is looked at; later frames are left to whoever gets the connection.
    if (this.authority !== undefined) return;
    const payload = this.buf.subarray(at + 9, at + 9 + len);
    if (type === HEADERS) {
      if (this.block) throw new H2ProtocolError('expected CONTINUATION');
      let off = 0;
      let pad = 0;
      if (flags & PADDED) {
        pad = payload[0] ?? 0;
        off = 1;
      }
      if (flags & PRIORITY) off += 5;
      if (off + pad > payload.length) throw new H2ProtocolError('HEADERS padding exceeds the frame');
      this.block = { streamId, octets: 0, fragments: [] };
      this.addFragment(payload.subarray(off, payload.length - pad), 9 + len);
    } else if (type === CONTINUATION) {
      if (!this.block || this.block.streamId !== streamId) throw new H2ProtocolError('unexpected CONTINUATION');
      this.addFragment(payload, 9 + len);
    } else {
      if (this.block) throw new H2ProtocolError('expected CONTINUATION');
      return;
    }
    if (!(flags & END_HEADERS)) return;
    const fragments = this.block!.fragments;
    const block = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
    this.block = undefined;
    // The fast look first; the full decoder when it cannot be sure (see hpack-authority.ts).
    const seen = scanAuthority(block, this.limits);
    this.authority = seen !== undefined ? seen : (new BoundedHpackDecoder(this.limits).decode(block).find((h) => h.name === ':authority')?.value ?? null);
  }

  private addFragment(fragment: Buffer, frameOctets: number): void {
    const b = this.block!;
    b.octets += frameOctets;
    if (b.octets > this.limits.maxHeaderBlock) {
      throw new H2ProtocolError(`header block exceeds ${this.limits.maxHeaderBlock} octets`, H2Code.ENHANCE_YOUR_CALM);
    }
    b.fragments.push(fragment);
  }
}
