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
import { DEFAULT_H2_LIMITS, H2Code, H2ProtocolError, goawayFrame, type H2Limits } from './h2-limits.js';
import { AuthorityRewriter } from './h2-rewriter.js';
import { FirstRequestScanner, GATE_SETTINGS, type GateDecision } from './h2-gate.js';
import { LogLimiter, guardSessions, ignore, type StreamShare } from './h2-sessions.js';
import { F } from '../telemetry/names.js';

/** A connection at the gate: what it has sent so far, where it goes once decided, and until when it may wait. */
interface GateWaiting {
  readonly scanner: FirstRequestScanner;
  readonly serve: (open: () => Socket) => void;
  deadline: number;
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

  /**
   * Connections at the gate, in arrival order, which is also deadline order (all wait GATE_MS).
   * Their listeners are shared functions that find the state here by socket, and one timer, armed
   * for the oldest deadline, serves them all: no timer and no closures per connection.
   */
  const waiting = new Map<Socket, GateWaiting>();
  let cancelGateTimer: (() => void) | undefined;
  const armGateTimer = (): void => {
    if (cancelGateTimer || waiting.size === 0) return;
    const oldest = waiting.values().next().value!;
    cancelGateTimer = clock.setTimer(Math.min(GATE_MS, Math.max(0, oldest.deadline - clock.now())), gateTimerFired);
  };
  const gateTimerFired = (): void => {
    cancelGateTimer = undefined;
    const now = clock.now();
    for (const [client, w] of waiting) {
      // The wall clock went back: each connection still waits at most GATE_MS more, never the jump.
      if (w.deadline - now > GATE_MS) w.deadline = now + GATE_MS;
      if (w.deadline > now) break;
      decide(client, w, w.scanner.toFilter());
    }
    armGateTimer();
  };
  const leaveGate = (client: Socket): void => {
    waiting.delete(client);
    client.off('data', onGateData);
    client.off('close', onGateClose);
  };
  const decide = (client: Socket, w: GateWaiting, d: GateDecision): void => {
    if (d.path === 'wait') return;
    leaveGate(client);
    if (client.destroyed) return;
    if (d.path === 'direct') {
      // Paused, so the bytes put back stay buffered until the HTTP/2 session reads them on its first tick
      // (a flowing socket would emit them to nobody); once they are read, reading goes on natively.
      client.pause();
      if (d.bytes.length > 0) client.unshift(d.bytes);
      w.serve(() => client);
      setImmediate(resumeIfOpen, client);
    } else {
      w.serve(() => filter(client, d.bytes, d.ackPending ? 1 : 0));
    }
  };
  function onGateData(this: Socket, chunk: Buffer): void {
    const w = waiting.get(this);
    if (!w) return;
    let d: GateDecision;
    try {
      d = w.scanner.push(chunk);
    } catch (err) {
      leaveGate(this);
      goaway(this, err, 0);
      return;
    }
    decide(this, w, d);
  }
  function onGateClose(this: Socket): void {
    leaveGate(this);
  }

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
      waiting.set(client, { scanner: new FirstRequestScanner(limits), serve, deadline: clock.now() + GATE_MS });
      armGateTimer();
      client.on('data', onGateData);
      client.on('close', onGateClose);
      // Not a closure of this function: a listener left on the socket for its lifetime would keep
      // the gate's state (scanner, the bytes it read, `serve`) alive after the hand-off.
      client.on('error', ignore);
      client.write(GATE_SETTINGS);
    },
  };
}

/** Resumes a socket handed to gRPC once its session has read the bytes put back (see decide). */
function resumeIfOpen(client: Socket): void {
  if (!client.destroyed) client.resume();
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
