/**
 * grpc-java, and so java-spiffe, sends the socket path as the HTTP/2 `:authority` on Unix
 * sockets. Node's HTTP/2 layer (nghttp2) rejects such a request with PROTOCOL_ERROR before
 * any gRPC code sees it, while spire-agent (Go) accepts it. Node has no option to accept it.
 * This filter sits between the client's socket and the gRPC server and rewrites an
 * `:authority` that is not a valid RFC 3986 authority to "localhost", what grpc-go and
 * Kubernetes send on Unix sockets.
 *
 * Header blocks are decoded with an HPACK decoder that follows the client's encoder and
 * re-encoded with our own encoder that the server's decoder follows, so both dynamic
 * tables stay consistent whatever is rewritten. Every other frame, and everything the
 * server sends, passes through untouched. A connection that does not open with the
 * HTTP/2 preface is passed through as is.
 *
 * The filter costs a socketpair and every byte copied both ways, so it is only used for the
 * connections that need it. Every connection first meets the gate (`authorityFilter`): it
 * sends an empty SETTINGS frame (gRPC clients wait for the server's SETTINGS before their
 * first request) and reads, within the same limits, up to the first header block and the
 * client's ACK of that SETTINGS. If the first `:authority` is valid, the bytes read (minus
 * that ACK, which the gRPC session never asked for) are put back into the client's own
 * socket and it goes to gRPC as is; nghttp2 then reads it natively, with the limits of
 * `guardSessions` (h2-sessions.ts). Otherwise, or if no request comes within GATE_MS, the filter takes it.
 */
import type { Http2Server } from 'node:http2';
import { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { Libc } from '../proc/libc.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { DEFAULT_H2_LIMITS, H2Code, H2ProtocolError, ResetBudget, goawayFrame, type H2Limits } from './h2-limits.js';
import { BoundedHpackDecoder, HpackEncoder, type HpackHeader } from './hpack-bounded.js';
import { LogLimiter, guardSessions, ignore, type StreamShare } from './h2-sessions.js';

export { H2ProtocolError } from './h2-limits.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const ACK = 0x1;
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
    const headers = new BoundedHpackDecoder(this.limits).decode(Buffer.concat(this.block!.fragments));
    this.block = undefined;
    this.authority = headers.find((h) => h.name === ':authority')?.value ?? null;
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
/** How long the gate waits for a connection's first request before it leaves it to the filter. */
export const GATE_MS = 1_000;

/**
 * How the listener hands a connection to gRPC: `serve` is called once, now or later, with a
 * function that opens the socket to inject (it may throw, e.g. out of fds: the listener then
 * refuses the connection).
 */
export interface ConnectionFront {
  wrap(client: Socket, serve: (open: () => Socket) => void): void;
  /** grpc-js's HTTP/2 server behind the injector, so its sessions get the limits; undefined if it cannot be found. */
  attach?(server: Http2Server | undefined, share?: StreamShare): void;
}

/**
 * One per listener: the gate, the filter, and the limits on sessions that nghttp2 reads
 * directly. A connection that breaks a limit gets GOAWAY and is closed (with both socketpair
 * ends at once, if it was filtered); the listener's guard then frees its pidfd and tracker entry.
 * Until `attach` has found the HTTP/2 server and set its limits, every connection is filtered.
 */
export function authorityFilter(deps: AuthorityFilterDeps): ConnectionFront {
  const { libc, log, clock } = deps;
  const limits = deps.limits ?? DEFAULT_H2_LIMITS;
  // Offending connections are logged once a minute with a count, so abuse cannot flood the log.
  const offences = new LogLimiter(clock, 60_000);
  let direct = false;
  const logOffence = (err: unknown, code: number): void => {
    const suppressed = offences.allow();
    if (suppressed !== undefined) {
      log.warn(
        { [F.error]: (err as Error).message, h2_error_code: code, ...(suppressed ? { [F.count]: suppressed } : {}) },
        `Closing an HTTP/2 connection that broke a protocol limit (GOAWAY sent)${suppressed ? `; ${suppressed} more since the last message` : ''}`,
      );
    }
  };
  const goaway = (client: Socket, err: unknown, lastStreamId: number): void => {
    const code = err instanceof H2ProtocolError ? err.h2Code : H2Code.PROTOCOL_ERROR;
    logOffence(err, code);
    client.pause();
    client.end(goawayFrame(lastStreamId, code));
    clock.setTimer(GOAWAY_LINGER_MS, () => client.destroy());
  };

  /** The filter: a rewriter between `client` and one end of a socketpair; the other end goes to gRPC. */
  const filter = (client: Socket, initial: Buffer, dropSettingsAcks: number): Socket => {
    const [toServer, serverSide] = socketPairOf(libc);
    const rewriter = new AuthorityRewriter(limits, () => clock.now(), dropSettingsAcks);
    let logged = false;
    let dead = false;
    let backpressured = false;
    let scheduled = false;
    const fail = (err: unknown): void => {
      dead = true;
      toServer.destroy();
      serverSide.destroy();
      goaway(client, err, rewriter.lastStreamId);
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
    if (initial.length > 0) pump(initial);
    return serverSide;
  };

  return {
    attach(server, share) {
      if (!server) {
        log.warn("grpc-js's HTTP/2 server was not found; every connection goes through the :authority filter");
        return;
      }
      guardSessions(server, limits, clock, logOffence, log, share);
      direct = true;
    },
    wrap(client, serve) {
      if (!direct) {
        serve(() => filter(client, Buffer.alloc(0), 0));
        return;
      }
      const scanner = new FirstRequestScanner(limits);
      let decided = false;
      const decide = (d: GateDecision): void => {
        if (decided || d.path === 'wait') return;
        decided = true;
        cancel();
        client.off('data', onData);
        client.off('close', onClose);
        if (client.destroyed) return;
        if (d.path === 'direct') {
          // Paused, so the bytes put back stay buffered until the HTTP/2 session reads them on its first tick
          // (a flowing socket would emit them to nobody); once they are read, reading goes on natively.
          client.pause();
          if (d.bytes.length > 0) client.unshift(d.bytes);
          serve(() => client);
          setImmediate(() => {
            if (!client.destroyed) client.resume();
          });
        } else {
          serve(() => filter(client, d.bytes, d.ackPending ? 1 : 0));
        }
      };
      const onData = (chunk: Buffer): void => {
        let d: GateDecision;
        try {
          d = scanner.push(chunk);
        } catch (err) {
          decided = true;
          cancel();
          client.off('data', onData);
          goaway(client, err, 0);
          return;
        }
        decide(d);
      };
      const onClose = (): void => {
        decided = true;
        cancel();
      };
      const cancel = clock.setTimer(GATE_MS, () => decide(scanner.toFilter()));
      client.on('data', onData);
      client.once('close', onClose);
      // Not a closure of this function: a listener left on the socket for its lifetime would keep
      // the gate's state (scanner, the bytes it read, `serve`) alive after the hand-off.
      client.on('error', ignore);
      client.write(GATE_SETTINGS);
    },
  };
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
