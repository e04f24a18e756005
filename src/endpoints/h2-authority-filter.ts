/**
 * grpc-java, and so java-spiffe, sends the socket path as the HTTP/2 `:authority` on Unix
 * sockets. Node's HTTP/2 layer (nghttp2) rejects such a request with PROTOCOL_ERROR before
 * any gRPC code sees it, while spire-agent (Go) accepts it. This filter sits between the
 * client's socket and the gRPC server and rewrites an `:authority` that is not a valid
 * RFC 3986 authority to "localhost", what grpc-go and Kubernetes send on Unix sockets.
 *
 * Header blocks are decoded with an HPACK decoder that follows the client's encoder and
 * re-encoded with our own encoder that the server's decoder follows, so both dynamic
 * tables stay consistent whatever is rewritten. Every other frame, and everything the
 * server sends, passes through untouched. A connection that does not open with the
 * HTTP/2 preface is passed through as is.
 */
import { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { Libc } from '../proc/libc.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { DEFAULT_H2_LIMITS, H2Code, H2ProtocolError, ResetBudget, goawayFrame, type H2Limits } from './h2-limits.js';
import { BoundedHpackDecoder, HpackEncoder, type HpackHeader } from './hpack-bounded.js';

export { H2ProtocolError } from './h2-limits.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** RFC 3986 authority characters; nghttp2 refuses anything else (notably '/'). */
const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%[\]]*$/;
export const UDS_AUTHORITY = 'localhost';

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

function frameOf(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

export interface AuthorityFilterDeps {
  readonly libc: Libc;
  readonly log: Logger;
  readonly clock: Clock;
  readonly limits?: H2Limits;
}

/** How long a connection that got GOAWAY may take to read it before it is cut. */
const GOAWAY_LINGER_MS = 1_000;

/**
 * One per listener. Returns the wrap function: it puts a rewriter between `client` and a new
 * socket of a kernel socketpair, and returns the other end for the gRPC server. Both ends are
 * real sockets, so the server sees an ordinary connection (and the caller is still identified
 * on `client`, before this). A connection that breaks a limit gets GOAWAY and is closed with
 * both socketpair ends at once; the listener's guard then frees its pidfd and tracker entry.
 */
export function authorityFilter(deps: AuthorityFilterDeps): (client: Socket) => Socket {
  const { libc, log, clock } = deps;
  const limits = deps.limits ?? DEFAULT_H2_LIMITS;
  // Offending connections are logged once a minute with a count, so abuse cannot flood the log.
  const offences = new LogLimiter(clock, 60_000);
  return (client) => {
    const [toServer, serverSide] = socketPairOf(libc);
    const rewriter = new AuthorityRewriter(limits, () => clock.now());
    let logged = false;
    let dead = false;
    let backpressured = false;
    let scheduled = false;
    const fail = (err: unknown): void => {
      dead = true;
      const code = err instanceof H2ProtocolError ? err.h2Code : H2Code.PROTOCOL_ERROR;
      const suppressed = offences.allow();
      if (suppressed !== undefined) {
        log.warn(
          { [F.error]: (err as Error).message, h2_error_code: code, ...(suppressed ? { [F.count]: suppressed } : {}) },
          `Closing an HTTP/2 connection that broke a protocol limit (GOAWAY sent)${suppressed ? `; ${suppressed} more since the last message` : ''}`,
        );
      }
      toServer.destroy();
      serverSide.destroy();
      client.pause();
      client.end(goawayFrame(rewriter.lastStreamId, code));
      clock.setTimer(GOAWAY_LINGER_MS, () => client.destroy());
    };
    const pump = (chunk: Buffer | undefined): void => {
      if (dead) return;
      let out: Buffer[];
      try {
        out = chunk ? rewriter.push(chunk) : rewriter.drain();
      } catch (err) {
        fail(err);
        return;
      }
      if (!logged && rewriter.rewrittenFrom !== undefined) {
        logged = true;
        log.debug({ authority: rewriter.rewrittenFrom }, 'Client sent a non-RFC :authority (a socket path); serving it as localhost');
      }
      for (const c of out) if (!toServer.write(c)) backpressured = true;
      if (rewriter.hasMore) {
        // More whole header blocks are waiting: decode them on later turns, letting other connections run.
        client.pause();
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => {
            scheduled = false;
            pump(undefined);
          });
        }
      } else if (backpressured) client.pause();
      else if (client.isPaused()) client.resume();
    };
    client.on('data', (chunk: Buffer) => pump(chunk));
    toServer.on('drain', () => {
      backpressured = false;
      if (!dead && !rewriter.hasMore) client.resume();
    });
    toServer.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) toServer.pause();
    });
    client.on('drain', () => toServer.resume());
    client.on('end', () => toServer.end());
    toServer.on('end', () => client.end());
    client.on('close', () => {
      toServer.destroy();
      serverSide.destroy();
    });
    toServer.on('close', () => {
      if (!dead) client.destroy();
    });
    client.on('error', () => {});
    toServer.on('error', () => {});
    serverSide.on('error', () => {});
    return serverSide;
  };
}

/** Allows one event per interval; allow() returns how many were held back since, or undefined. */
class LogLimiter {
  private last = -Infinity;
  private held = 0;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
  ) {}

  allow(): number | undefined {
    const now = this.clock.now();
    if (now - this.last < this.intervalMs && now >= this.last) {
      this.held++;
      return undefined;
    }
    this.last = now;
    const held = this.held;
    this.held = 0;
    return held;
  }
}

/** Both ends of a socketpair as Sockets; on any failure neither fd is left open. */
function socketPairOf(libc: Libc): [Socket, Socket] {
  const [a, b] = libc.socketpair();
  let first: Socket | undefined;
  try {
    first = new Socket({ fd: a, readable: true, writable: true });
    return [first, new Socket({ fd: b, readable: true, writable: true })];
  } catch (err) {
    if (first) first.destroy();
    else libc.close(a);
    libc.close(b);
    throw err;
  }
}
