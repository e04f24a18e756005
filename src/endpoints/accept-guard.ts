/**
 * What the accept path needs to never leak and never crash:
 *
 * - `ConnectionGuard` owns everything one accepted connection holds (pidfd, socketpair
 *   ends, tracker entries). It listens for the socket's close from the first moment, so a
 *   caller that disconnects, or exits, while it is still being identified releases all of
 *   it; anything acquired after the close is released the moment it is handed over.
 * - `RefusalLog` turns refusals into log lines without letting a flood of them become a
 *   flood of lines: the first of each kind is logged, then at most one summary per interval.
 */
import { NO_METRICS, type CounterHandle, type Metrics } from '../telemetry/metrics/index.js';
import { readFileSync } from 'node:fs';
import { Socket, type SocketConstructorOpts } from 'node:net';
import type { Clock } from '../clock.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { SpiffeAgentError } from '../errors.js';
import { FdExhaustedError } from '../proc/errors.js';
import type { Libc } from '../proc/libc.js';

export class ConnectionGuard {
  private readonly releases: (() => void)[] = [];
  private released = false;

  constructor(private readonly socket: Socket) {
    socket.on('error', () => {});
    // release() is idempotent; on() saves the once() wrapper every connection would hold.
    socket.on('close', () => this.release());
    if (socket.destroyed) this.release();
  }

  /** True once the connection is gone; whatever is owned now is released at once. */
  get closed(): boolean {
    return this.released;
  }

  /** Takes ownership of a resource; releases it immediately if the connection is already gone. */
  own(release: () => void): void {
    if (this.released) runQuietly(release);
    else this.releases.push(release);
  }

  /** Closes the connection and releases everything it owns, newest first. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.socket.destroy();
    for (const r of this.releases.splice(0).reverse()) runQuietly(r);
  }
}

function runQuietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // A release that fails (an fd already closed) must not stop the others.
  }
}

function isFdExhaustedError(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | undefined;
  return e?.code === 'fd_exhausted' || e?.code === 'EMFILE' || e?.code === 'ENFILE';
}

/** Kinds of refusal, each logged on its own schedule. */
type Kind = 'fd_exhausted' | 'caller_gone' | 'uid_connection_share' | 'other';

export class RefusalLog {
  private readonly state = new Map<Kind, { lastLogged: number; suppressed: number }>();
  private readonly counted: CounterHandle;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    /** At most one line per kind per interval; the rest are counted into the next line. */
    private readonly intervalMs = 60_000,
    metrics: Metrics = NO_METRICS,
  ) {
    this.counted = metrics.own.counter('refused_connections', 'Connections refused or dropped before gRPC, by reason (fd_exhausted, uid_connection_share, caller_gone, other)', ['reason']);
  }

  /** Records one refused connection. */
  refused(err: unknown): void {
    const code = (err as { code?: unknown })?.code;
    const kind: Kind = isFdExhaustedError(err) ? 'fd_exhausted' : code === 'caller_gone' || code === 'uid_connection_share' ? code : 'other';
    this.counted.inc(kind);
    const now = this.clock.now();
    const s = this.state.get(kind);
    if (s && now - s.lastLogged < this.intervalMs) {
      s.suppressed++;
      return;
    }
    const suppressed = s?.suppressed ?? 0;
    this.state.set(kind, { lastLogged: now, suppressed: 0 });
    const fields = { [F.error]: (err as Error)?.message ?? String(err), ...(suppressed ? { [F.count]: suppressed } : {}) };
    const more = suppressed ? `; ${suppressed} more since the last message` : '';
    if (kind === 'fd_exhausted') {
      this.log.error(fields, `Refusing connections: the agent is out of file descriptors${more}`);
    } else if (kind === 'uid_connection_share') {
      this.log.warn(fields, `Refusing connections: one user holds its share of connections${more}`);
    } else if (kind === 'caller_gone') {
      // A caller that hung up before it was identified is harmless and costs nothing now.
      this.log.debug(fields, `Connection closed before its caller was identified${more}`);
    } else {
      const what = err instanceof SpiffeAgentError && /^(peertracker|proc):/.test(err.message) ? 'caller could not be identified' : 'connection could not be set up';
      this.log.warn(fields, `Connection refused: ${what}${more}`);
    }
  }
}

/**
 * The listen backlog: the kernel's maximum (net.core.somaxconn), not Node's default of 511,
 * so a burst of thousands of clients queues in the kernel instead of getting EAGAIN.
 * spire-agent (Go) listens with somaxconn too. Read when listening, never at import.
 */
export function listenBacklog(somaxconnPath = '/proc/sys/net/core/somaxconn'): number {
  try {
    const n = Number.parseInt(readFileSync(somaxconnPath, 'utf8').trim(), 10);
    if (Number.isSafeInteger(n) && n > 0) return Math.min(n, 0x7fffffff);
  } catch {
    // No /proc (or not Linux): the kernel clamps whatever we ask to its own maximum.
  }
  return 4096;
}

/**
 * Descriptors kept free for the agent itself (entries reloads, SVID and key writes, logs),
 * and for the three more each accepted connection may need (a pidfd, and a socketpair when it is filtered).
 */
export const FD_RESERVE = 32;

/**
 * Refuses a connection whose accepted fd leaves less than the reserve below the limit.
 * Linux hands out the lowest free descriptor, so an fd this high means every lower one is
 * in use. Past the limit libuv accepts and drops connections silently, so refusing a little
 * earlier is also what makes running out visible in the log.
 */
export function checkFdHeadroom(socket: Socket, limit: number, reserve = FD_RESERVE): void {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd === 'number' && fd >= limit - reserve) throw new FdExhaustedError(`endpoints: accept (fd ${fd} of ${limit})`, 24);
}

/**
 * Runs connection set-up (socketpair, HTTP/2 session) in small batches, each on its own
 * turn of the event loop. Between batches libuv drains the listen queue, so a burst of
 * thousands of connections is accepted (and identified: SO_PEERCRED and the pidfd are
 * taken at accept) while the costly part waits its turn, instead of the kernel's backlog
 * overflowing and later clients getting EAGAIN.
 */
export class SetupPacer {
  private readonly queue: (() => void)[] = [];
  private scheduled = false;

  constructor(
    private readonly batch = 16,
    /** The listen-queue pump, run on every turn before the set-ups (see ListenQueuePump). */
    private readonly pump: () => void = () => {},
  ) {}

  run(fn: () => void): void {
    this.queue.push(fn);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.pump();
    for (const fn of this.queue.splice(0, this.batch)) runQuietly(fn);
    if (this.queue.length > 0) setImmediate(() => this.drain());
    else this.scheduled = false;
  }
}

/** The two libc calls the pump needs (`Libc` satisfies it). */
export type AcceptCalls = Pick<Libc, 'accept' | 'close'>;

/**
 * Drains the kernel's listen queue from inside the agent's own work. libuv accepts only when the
 * event loop reaches the listening fd, once per loop turn; in a burst a turn may serve dozens of
 * connections' HTTP/2 and gRPC work, the queue (net.core.somaxconn, 4,096 by default) fills, and
 * clients get EAGAIN: with 5,000 clients at once that refused ~850 of them. The pump is called at
 * each step of a connection's set-up and each call (at most once per `everyMs`); each time it takes
 * every queued connection with accept4 (a few µs each when the queue is empty, one failed call)
 * and passes it, paused, to the same accept path libuv's connections take. Identity is still read
 * from the kernel (SO_PEERCRED) on that socket, as for every other connection.
 */
export class ListenQueuePump {
  private last = -Infinity;
  /** Connections taken from the queue by the pump (for tests and the debug log). */
  taken = 0;
  private stopped = false;

  constructor(
    private readonly listenFd: number,
    private readonly sys: AcceptCalls,
    private readonly onSocket: (socket: Socket) => void,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly everyMs = 1,
    /** At most this many per pump, so one pump never holds the loop for long. */
    private readonly max = 256,
  ) {}

  maybe(): number {
    if (this.stopped) return 0;
    const t = this.now();
    if (t - this.last < this.everyMs && t >= this.last) return 0;
    return this.drain();
  }

  /** Takes every queued connection (up to `max`); returns how many. */
  drain(): number {
    this.last = this.now();
    let n = 0;
    for (let i = 0; i < this.max && !this.stopped; i++) {
      let fd: number;
      try {
        fd = this.sys.accept(this.listenFd);
      } catch (err) {
        this.onError(err);
        return n;
      }
      if (fd < 0) return n;
      this.taken++;
      n++;
      let socket: Socket;
      try {
        // pauseOnCreate: as net.Server's pauseOnConnect, nothing is read before the caller is identified.
        socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: false, pauseOnCreate: true } as SocketConstructorOpts);
      } catch (err) {
        this.sys.close(fd);
        this.onError(err);
        continue;
      }
      this.onSocket(socket);
    }
    return n;
  }

  /** Before the listening fd is closed: a closed fd number may be reused by something else. */
  stop(): void {
    this.stopped = true;
  }
}

/** `fn()`, re-read at most once per `ms`: the fd limit, asked on every accept, rarely changes. */
export function cachedFor<T>(clock: Clock, ms: number, fn: () => T): () => T {
  let at = -Infinity;
  let value: T;
  return () => {
    const now = clock.now();
    if (now - at >= ms || now < at) {
      value = fn();
      at = now;
    }
    return value;
  };
}
