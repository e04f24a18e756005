/**
 * The :authority filter's byte-stream rewriter (see h2-authority-filter.ts for why it exists):
 * client → server frames in, the same frames out, with an `:authority` that is not a valid RFC
 * 3986 authority (grpc-java's socket path) re-encoded as "localhost".
 */
import { DEFAULT_H2_LIMITS, H2Code, H2ProtocolError, ResetBudget, type H2Limits } from './h2-limits.js';
import { BoundedHpackDecoder, HpackEncoder, type HpackHeader } from './hpack-bounded.js';
import { ACK, CONTINUATION, END_HEADERS, END_STREAM, HEADERS, PADDED, PREFACE, PRIORITY, RST_STREAM, SETTINGS, UDS_AUTHORITY, VALID_AUTHORITY, frameOf } from './h2-frames.js';

interface PendingBlock {
  streamId: number;
  endStream: boolean;
  priority: Buffer | undefined;
  fragments: Buffer[];
  /** Octets received for this block so far, frame headers included (a CONTINUATION flood of empty frames counts). */
  octets: number;
}

/**
 * The client→server byte stream, frame by frame. Pure: bytes in, bytes out. Throws
 * H2ProtocolError (with the GOAWAY code) as soon as the input breaks a limit; never holds
 * more than one frame plus one bounded header block.
 */
export class AuthorityRewriter {
  private buf: Buffer = Buffer.alloc(0);
  private state: 'preface' | 'frames' | 'passthrough' = 'preface';
  private pending: PendingBlock | undefined;
  private readonly decoder: BoundedHpackDecoder;
  private readonly encoder = new HpackEncoder();
  private readonly resets: ResetBudget;
  /** The first rewritten authority, for one log line per connection. */
  rewrittenFrom: string | undefined;
  /** Highest client stream id passed on, for GOAWAY. */
  lastStreamId = 0;
  /** Set when push() stopped after one header block with whole frames still buffered: call drain() on a later tick. */
  hasMore = false;

  constructor(
    private readonly limits: H2Limits = DEFAULT_H2_LIMITS,
    now: () => number = () => performance.now(),
    /** SETTINGS ACKs from the client to drop: the gate's own SETTINGS, whose ACK the server never expects. */
    private dropSettingsAcks = 0,
  ) {
    this.decoder = new BoundedHpackDecoder(limits);
    this.resets = new ResetBudget(limits, now);
  }

  /**
   * Takes the next bytes from the client and returns what to forward. Decodes at most one
   * header block per call, so one connection's HPACK work per event-loop turn is bounded.
   */
  push(chunk: Buffer): Buffer[] {
    if (this.state === 'passthrough') return [chunk];
    if (chunk.length > 0) this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.hasMore = false;
    const out: Buffer[] = [];
    if (this.state === 'preface') {
      const n = Math.min(this.buf.length, PREFACE.length);
      if (!this.buf.subarray(0, n).equals(PREFACE.subarray(0, n))) {
        this.state = 'passthrough';
        const all = this.buf;
        this.buf = Buffer.alloc(0);
        return [all];
      }
      if (this.buf.length < PREFACE.length) return out;
      out.push(this.buf.subarray(0, PREFACE.length));
      this.buf = this.buf.subarray(PREFACE.length);
      this.state = 'frames';
    }
    let decoded = false;
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      // Checked on the 9-byte header, before waiting for (and buffering) the body.
      if (len > this.limits.maxFrameSize) {
        throw new H2ProtocolError(`frame of ${len} octets exceeds SETTINGS_MAX_FRAME_SIZE ${this.limits.maxFrameSize}`, H2Code.FRAME_SIZE_ERROR);
      }
      if (this.buf.length < 9 + len) break;
      if (decoded && (this.buf[3] === HEADERS || this.buf[3] === CONTINUATION)) {
        this.hasMore = true;
        break;
      }
      const frame = this.buf.subarray(0, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      const frames = this.frame(frame);
      if (frames.length > 0 && (frame[3] === HEADERS || frame[3] === CONTINUATION)) decoded = true;
      out.push(...frames);
    }
    // A partial frame is kept in a buffer of its own, not a view pinning the whole chunk.
    if (this.buf.length > 0 && this.buf.length < 9 + this.limits.maxFrameSize) this.buf = Buffer.from(this.buf);
    return out;
  }

  /** Continues after push() set hasMore. */
  drain(): Buffer[] {
    return this.push(Buffer.alloc(0));
  }

  private frame(frame: Buffer): Buffer[] {
    const type = frame[3]!;
    const flags = frame[4]!;
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    const payload = frame.subarray(9);
    if (this.pending && type !== CONTINUATION) throw new H2ProtocolError('expected CONTINUATION');
    if (type === HEADERS) {
      let off = 0;
      let pad = 0;
      if (flags & PADDED) {
        pad = payload[0] ?? 0;
        off = 1;
      }
      const priority = flags & PRIORITY ? Buffer.from(payload.subarray(off, off + 5)) : undefined;
      if (priority) off += 5;
      if (off + pad > payload.length) throw new H2ProtocolError('HEADERS padding exceeds the frame');
      if (streamId > this.lastStreamId) this.lastStreamId = streamId;
      this.pending = { streamId, endStream: (flags & END_STREAM) !== 0, priority, fragments: [], octets: 0 };
      this.addFragment(Buffer.from(payload.subarray(off, payload.length - pad)), frame.length);
    } else if (type === CONTINUATION) {
      if (!this.pending || this.pending.streamId !== streamId) throw new H2ProtocolError('unexpected CONTINUATION');
      this.addFragment(Buffer.from(payload), frame.length);
    } else {
      if (type === RST_STREAM && streamId !== 0 && !this.resets.take()) {
        throw new H2ProtocolError('client resets streams faster than allowed (rapid reset)', H2Code.ENHANCE_YOUR_CALM);
      }
      if (type === SETTINGS && flags & ACK && this.dropSettingsAcks > 0) {
        this.dropSettingsAcks--;
        return [];
      }
      return [Buffer.from(frame)];
    }
    if (!(flags & END_HEADERS)) return [];
    const block = this.pending!;
    this.pending = undefined;
    return this.reencode(block);
  }

  private addFragment(fragment: Buffer, frameOctets: number): void {
    const p = this.pending!;
    p.octets += frameOctets;
    if (p.octets > this.limits.maxHeaderBlock) {
      throw new H2ProtocolError(`header block exceeds ${this.limits.maxHeaderBlock} octets`, H2Code.ENHANCE_YOUR_CALM);
    }
    p.fragments.push(fragment);
  }

  private reencode(block: PendingBlock): Buffer[] {
    const headers: HpackHeader[] = this.decoder.decode(Buffer.concat(block.fragments));
    for (const h of headers) {
      h.neverIndex ??= false;
      if (h.name === ':authority' && !VALID_AUTHORITY.test(h.value)) {
        this.rewrittenFrom ??= h.value;
        h.value = UDS_AUTHORITY;
      }
    }
    const encoded = this.encoder.encode(headers);
    const max = this.limits.maxFrameSize;
    const frames: Buffer[] = [];
    const first = Math.min(encoded.length, max - (block.priority ? 5 : 0));
    frames.push(
      frameOf(
        HEADERS,
        (block.endStream ? END_STREAM : 0) | (block.priority ? PRIORITY : 0) | (first === encoded.length ? END_HEADERS : 0),
        block.streamId,
        block.priority ? Buffer.concat([block.priority, encoded.subarray(0, first)]) : encoded.subarray(0, first),
      ),
    );
    for (let off = first; off < encoded.length; off += max) {
      const end = Math.min(encoded.length, off + max);
      frames.push(frameOf(CONTINUATION, end === encoded.length ? END_HEADERS : 0, block.streamId, encoded.subarray(off, end)));
    }
    return frames;
  }
}
