/**
 * Guards on the HTTP/2 sessions of grpc-js's server, read by nghttp2: every direct connection,
 * and the server side of every filtered one (see h2-authority-filter.ts). The gate and the
 * filter check a connection's bytes before nghttp2 does; this module checks what only the
 * session sees, and stands between nghttp2 and grpc-js's stream handler.
 *
 * Why it stands there. Node runs a session's 'stream' events and its streams' 'close' events on
 * process.nextTick, and those ticks run at the end of the native callback that produced them,
 * still inside nghttp2_session_mem_recv(); Node also destroys a session itself from inside its
 * receive path (after too many invalid frames, or any error nghttp2 returns). Destroying a
 * session there is what nghttp2 forbids: Node resets its open streams with a code other than
 * CANCEL, and Http2Stream::SubmitRstStream then sends pending frames at once, re-entering
 * nghttp2_session_mem_send(). With Node 20 a local client reaches this with a few writes:
 * - rapid reset: the reset budget used to destroy the session from a stream's 'close'
 *   listener: allocation ran away to gigabytes (std::bad_alloc), or Node aborted on
 *   `current_nghttp2_memory_ >= previous_size`;
 * - 1,000 malformed requests (an empty :path, say) on a connection whose watch stream has
 *   output deferred: Node destroys the session itself, and aborts at the next GC on
 *   `current_nghttp2_memory_ == 0` in ~Http2Session (plain grpc-js on Node 20 too; not 24);
 * - streams destroyed that way may still have their 'stream' event queued, and grpc-js answers
 *   an unknown method or a wrong content type synchronously with stream.respond(), which throws
 *   ERR_HTTP2_INVALID_STREAM on a destroyed stream: an uncaught exception.
 * So every session's destroy() stops reading the connection at once and takes effect on a later
 * macrotask (setImmediate: after the receive loop has returned), whoever calls it; a refused
 * session's streams no longer reach gRPC; and grpc-js's handler is called only for a stream
 * that is still open.
 *
 * The limits: nghttp2 itself refuses frames above the SETTINGS_MAX_FRAME_SIZE it advertised
 * (FRAME_SIZE_ERROR), HPACK table size updates above its 4,096 (COMPRESSION_ERROR) and more
 * than 8 CONTINUATION frames per block (nghttp2 1.61), and Node refuses more than 128 header
 * fields per block (maxHeaderListPairs). Here: the header list limit is advertised (Node
 * enforces it once the client has ACKed) and checked on every request before gRPC sees it;
 * streams ended by a reset (the client's RST_STREAM, or Node's after a limit) spend the same
 * token bucket as the filter's rapid-reset budget. A session over either gets GOAWAY
 * ENHANCE_YOUR_CALM and is closed.
 */
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { Clock } from '../clock.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { H2Code, H2ProtocolError, ResetBudget, type H2Limits } from './h2-limits.js';

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

/**
 * Admits a new stream of a session: returns what to call when it closes, or null when the
 * session's user already holds its share of open streams (see uid-share.ts).
 */
export interface StreamShare {
  admit(session: ServerHttp2Session): (() => void) | null;
}

const EVERYONE: StreamShare = { admit: () => noop };
function noop(): void {}

/** gRPC's RESOURCE_EXHAUSTED, answered by the guard itself (trailers only), as grpc-js answers an unknown method. */
const RESOURCE_EXHAUSTED = 8;

/** What one session spends and whether it is being closed. */
class SessionGuard {
  refused = false;
  private readonly resets: ResetBudget;

  constructor(
    private readonly session: ServerHttp2Session,
    limits: H2Limits,
    now: () => number,
    private readonly onOffence: (err: unknown, code: number) => void,
  ) {
    this.resets = new ResetBudget(limits, now);
  }

  /** A stream of this session closed; a reset spends a token. */
  streamClosed(rstCode: number | undefined): void {
    if (!rstCode || this.refused || this.session.destroyed || this.resets.take()) return;
    this.refuse(new H2ProtocolError('client resets streams faster than allowed (rapid reset)', H2Code.ENHANCE_YOUR_CALM));
  }

  /** GOAWAY and close (destroy() is deferred: this may run inside nghttp2's receive loop, see above). */
  refuse(err: H2ProtocolError): void {
    if (this.refused) return;
    this.refused = true;
    this.onOffence(err, err.h2Code);
    this.session.destroy(err, err.h2Code);
  }
}

/** Sessions whose destroy() has been called and is waiting for its macrotask. */
const destroying = new WeakSet<ServerHttp2Session>();

/**
 * Installed as each session's own destroy(): one shared function, so a session holds no closure
 * for it. Reading stops at once, so nghttp2 is fed nothing more; the real destroy (the
 * prototype's) runs on the next macrotask with the first caller's arguments.
 */
function deferredDestroy(this: ServerHttp2Session, error?: Error, code?: number): ServerHttp2Session {
  if (this.destroyed || destroying.has(this)) return this;
  destroying.add(this);
  const handle = (this.socket as { _handle?: { readStop?: () => unknown } } | undefined)?._handle;
  handle?.readStop?.();
  setImmediate(destroyNow, this, error, code);
  return this;
}

function destroyNow(session: ServerHttp2Session, error: Error | undefined, code: number | undefined): void {
  if (session.destroyed) return;
  const destroy = Object.getPrototypeOf(session).destroy as ServerHttp2Session['destroy'];
  if (code === undefined) destroy.call(session, error);
  else destroy.call(session, error, code);
}

/**
 * Puts the guards on `server`, whose 'stream' listeners (grpc-js's handler) are taken off and
 * called from here instead. `onInternal` hears of a gRPC handler that threw anyway.
 */
export function guardSessions(
  server: Http2Server,
  limits: H2Limits,
  clock: Clock,
  onOffence: (err: unknown, code: number) => void,
  log: Logger,
  share: StreamShare = EVERYONE,
): void {
  server.updateSettings({ maxHeaderListSize: limits.maxHeaderListSize });
  const dispatch = server.listeners('stream') as StreamListener[];
  if (dispatch.length === 0) log.warn("grpc-js's stream handler was not found on its HTTP/2 server; requests will not be served");
  server.removeAllListeners('stream');
  // Shared by every session: what a session's listeners capture is held for its whole life.
  const now = (): number => clock.now();
  const guards = new WeakMap<ServerHttp2Session, SessionGuard>();
  // First of the 'session' listeners, so no one can destroy a session before its destroy() is deferred.
  server.prependListener('session', (session: ServerHttp2Session) => {
    session.destroy = deferredDestroy as ServerHttp2Session['destroy'];
    // A destroyed session emits 'error' (with the GOAWAY code, or Node 24's ERR_HTTP2_ERROR); nothing else listens for it.
    session.on('error', ignore);
    guards.set(session, new SessionGuard(session, limits, now, onOffence));
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    // First, whatever follows: destroying a session destroys its streams with an error, and a
    // stream that gRPC never saw has no other 'error' listener (an unhandled 'error' throws).
    stream.on('error', ignore);
    const guard = guards.get(stream.session as ServerHttp2Session);
    // Closed before its turn (its session refused, or reset and destroyed): there is no one to answer.
    if (!guard || guard.refused || stream.destroyed || stream.closed) return;
    // Node enforces the advertised list size only once the client has ACKed our SETTINGS; this holds before that too.
    let size = 0;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) size += rawHeaders[i]!.length + rawHeaders[i + 1]!.length + 32;
    if (size > limits.maxHeaderListSize) {
      guard.refuse(new H2ProtocolError(`header list of ${size} octets exceeds ${limits.maxHeaderListSize}`, H2Code.ENHANCE_YOUR_CALM));
      return;
    }
    const release = share.admit(stream.session as ServerHttp2Session);
    if (release === null) {
      // Responding is safe inside the receive loop (grpc-js does it); resetting with a code other than CANCEL is not.
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(RESOURCE_EXHAUSTED), 'grpc-message': encodeURIComponent(STREAM_SHARE_MESSAGE) },
        { endStream: true },
      );
      return;
    }
    // 'close' comes once; on() saves the once() wrapper every open stream would hold.
    stream.on('close', () => {
      release();
      guard.streamClosed(stream.rstCode);
    });
    try {
      for (const l of dispatch) l.call(server, stream, headers, flags, rawHeaders);
    } catch (err) {
      // Not expected: the stream is open here. One stream is lost, never the agent.
      log.error({ [F.error]: (err as Error)?.message ?? String(err) }, 'The gRPC stream handler failed; the stream is reset');
      setImmediate(() => stream.destroy());
    }
  });
}

const STREAM_SHARE_MESSAGE = "this user's processes hold the most open calls one user may hold on the agent's socket; retry once some have ended";

/** An 'error' listener that does nothing: the errors end in 'close', which the owner handles. */
export function ignore(): void {}

/** Allows one event per interval; allow() returns how many were held back since, or undefined. */
export class LogLimiter {
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
