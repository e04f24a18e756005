/**
 * Owns the Unix listening socket so each accepted connection's peer credentials
 * can be read from the kernel before gRPC sees a byte, then hands the connection
 * to grpc-js through a connection injector. The connection is found again from a
 * call by an opaque id written into the socket's remoteAddress (which a Unix
 * socket otherwise leaves undefined); nothing the client sends can set it.
 */
import type { Metrics } from '../telemetry/metrics/index.js';
import { lstat, rm } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { basename, join, resolve as resolvePath } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Http2Server } from 'node:http2';
import type { ConnectionFront } from './h2-authority-filter.js';
import type { Caller, PeerTracker } from '../proc/peer-tracker.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { SpiffeAgentError } from '../errors.js';
import { prepareSocketDir, withSocketMode } from './socket-dir.js';
import { SocketActivationError, type SocketActivation } from './socket-activation.js';
import { systemClock, type Clock } from '../clock.js';
import { ConnectionGuard, ListenQueuePump, type AcceptCalls, RefusalLog, SetupPacer, cachedFor, checkFdHeadroom, listenBacklog } from './accept-guard.js';
import { UID_STREAM_SHARE, UidShare, UidShareError, uidShareFor, uidSharePressureFor } from './uid-share.js';
import type { StreamShare } from './h2-sessions.js';
import { SessionDrain } from './session-drain.js';

const PEER_PREFIX = 'spiffe-agent-conn-';
/** How long close() waits for clients' PING ACKs before GOAWAY counts as sent (a local client answers in ms). */
const GOAWAY_WAIT_MS = 500;

export class UdsListener {
  private net: NetServer | undefined;
  private injector: grpc.ConnectionInjector | undefined;
  private readonly callers = new Map<string, Caller>();
  private readonly sockets = new Set<Socket>();
  /** Every accepted connection, identified or not (`sockets` holds the identified ones). */
  private readonly open = new Set<Socket>();
  private boundPath: string | undefined;
  private nextId = 1;
  /** Inode of the socket file we bound, so shutdown never deletes a successor's socket. */
  private boundIno: number | undefined;
  private readonly refusals: RefusalLog;
  private readonly fdLimit: () => number;
  private readonly pacer = new SetupPacer(16, () => this.pump?.maybe());
  private readonly sys: AcceptCalls | undefined;
  private pump: ListenQueuePump | undefined;
  /** Connections and open calls per uid, so one local user cannot hold every descriptor or all memory (see uid-share.ts). */
  private readonly uidConnections: UidShare;
  private readonly uidStreams: UidShare;
  private readonly activation: SocketActivation | undefined;
  /** Ends the HTTP/2 sessions gracefully on close (session-drain.ts); undefined if grpc-js's HTTP/2 server was not found. */
  private sessions: SessionDrain | undefined;
  /** Set when the grace period is over: from then on nothing accepted is served any more. */
  private closed = false;
  private goaway: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly grpcServer: grpc.Server,
    /** Who is on the other end of an accepted socket; tests pass fake callers here. */
    private readonly tracker: Pick<PeerTracker, 'track'>,
    private readonly log: Logger,
    /** 0o777 for the public Workload API (any local process may ask); tighter for admin. */
    private readonly mode = 0o777,
    /** Decides how a connection reaches gRPC (see h2-authority-filter.ts); identity is read first. */
    private readonly front: ConnectionFront = { wrap: (s, serve) => serve(() => s) },
    opts: {
      clock?: Clock;
      fdLimit?: () => number;
      /** accept4 and close (libc): with them, a burst is taken from the listen queue between steps of work (ListenQueuePump). */
      sys?: AcceptCalls;
      /** Most connections one uid may hold once the shares apply; from the fd limit unless set (tests). */
      uidShare?: () => number;
      /** Connections open together from which the shares apply; from the fd limit unless set (tests). */
      uidSharePressure?: () => number;
      /** Most open calls one uid may hold; UID_STREAM_SHARE unless set (tests). */
      uidStreamShare?: number;
      /** Sockets systemd passed: the one bound to this path is served instead of binding a new one. */
      activation?: SocketActivation;
      /** spiffe_agent_refused_connections; none when absent. */
      metrics?: Metrics;
    } = {},
  ) {
    const clock = opts.clock ?? systemClock;
    this.sys = opts.sys;
    this.activation = opts.activation;
    this.refusals = new RefusalLog(log, clock, undefined, opts.metrics);
    this.fdLimit = cachedFor(clock, 1000, opts.fdLimit ?? (() => Number.MAX_SAFE_INTEGER));
    this.uidConnections = new UidShare(opts.uidShare ?? (() => uidShareFor(this.fdLimit())), opts.uidSharePressure ?? (() => uidSharePressureFor(this.fdLimit())));
    const streamShare = opts.uidStreamShare ?? UID_STREAM_SHARE;
    this.uidStreams = new UidShare(() => streamShare);
  }

  /** The caller behind a gRPC call, or undefined if the connection is unknown or gone. */
  callerOf(call: { getPeer(): string }): Caller | undefined {
    this.pump?.maybe();
    return this.callers.get(call.getPeer());
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /**
   * Checks (and creates) the socket's directory, then binds the socket with its final mode
   * in the resolved directory. Returns that directory, so callers can check placement on
   * the path the socket really has.
   */
  async listen(): Promise<string> {
    const euid = process.geteuid?.() ?? 0;
    const realDir = await prepareSocketDir(this.path, { euid, log: this.log, what: this.mode === 0o777 ? 'Workload API' : 'admin' });
    const bound = join(realDir, basename(this.path));
    const passed = this.activation?.take(bound, resolvePath(this.path));
    if (!passed) await removeStaleSocket(bound);
    const known = new Set(http2ServersOf(this.grpcServer));
    this.injector = this.grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const h2 = http2ServersOf(this.grpcServer).find((s) => !known.has(s));
    this.front.attach?.(h2, this.streamShare);
    this.sessions = h2 && new SessionDrain(h2);
    // Paused until set up (see SetupPacer): in a burst, reads of connections still waiting
    // their turn would otherwise crowd accept(2) out of the event loop.
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: true }, (socket) => this.onConnection(socket));
    this.net = server;
    if (passed) {
      await this.listenPassed(server, passed.fd, bound, euid);
    } else {
      await new Promise<void>((resolve, reject) => {
        const onBindError = (err: NodeJS.ErrnoException): void => reject(bindError(bound, euid, err));
        server.once('error', onBindError);
        // Synchronous bind under the umask, so the socket never exists with a wider mode.
        withSocketMode(this.mode, () => server.listen({ path: bound, backlog: listenBacklog() }, () => this.listening(server, onBindError, resolve)));
      });
    }
    const st = await lstat(bound);
    if (passed) {
      // The socket outlives this process (systemd holds it), so its file is never removed here.
      this.checkPassedFile(server, st, bound, euid);
      this.log.info({ [F.path]: bound, fd: passed.fd, name: passed.name }, 'Serving on the socket passed by systemd');
    } else if (!st.isSocket() || st.uid !== euid || (st.mode & 0o777) !== this.mode) {
      server.close();
      throw new SpiffeAgentError(
        'socket_path_taken',
        `endpoints: ${bound} changed right after it was bound (owner uid ${st.uid}, mode 0${(st.mode & 0o777).toString(8)}); something else is managing this directory — give the agent a directory of its own`,
      );
    }
    if (!passed) {
      this.boundPath = bound;
      this.boundIno = st.ino;
    }
    const listenFd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (this.sys && typeof listenFd === 'number' && listenFd >= 0) {
      this.pump = new ListenQueuePump(listenFd, this.sys, (s) => this.onConnection(s), (err) => this.refusals.refused(err));
    }
    return realDir;
  }

  private listening(server: NetServer, onBindError: (err: NodeJS.ErrnoException) => void, resolve: () => void): void {
    server.off('error', onBindError);
    // accept(2) failing (EMFILE once libuv's reserve fd is gone too) refuses a connection; it must not crash the agent.
    server.on('error', (err) => this.refusals.refused(err));
    resolve();
  }

  /** Serves a listening socket systemd passed (already bound, with the mode its unit gave it). */
  private async listenPassed(server: NetServer, fd: number, bound: string, euid: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(new SpiffeAgentError('socket_bind_failed', `endpoints: cannot serve fd ${fd}, the socket systemd passed for ${bound}: ${err.message}; check the .socket unit (uid ${euid})`, { cause: err }));
      server.once('error', onError);
      server.listen({ fd, backlog: listenBacklog() }, () => this.listening(server, onError, resolve));
    });
  }

  /**
   * systemd creates the socket file as root (or SocketUser=); what the agent requires of its own
   * socket holds for it too: a socket, owned by root or the agent, with exactly the mode the agent
   * would give it (a wider one would open the admin socket; a narrower one would lock workloads out).
   */
  private checkPassedFile(server: NetServer, st: Stats, bound: string, euid: number): void {
    if (st.isSocket() && (st.uid === 0 || st.uid === euid) && (st.mode & 0o777) === this.mode) return;
    server.close();
    const want = `0${this.mode.toString(8)}`;
    throw new SocketActivationError(
      `endpoints: ${bound}, the socket systemd passed, is ${st.isSocket() ? 'a socket' : 'not a socket'} owned by uid ${st.uid} with mode 0${(st.mode & 0o777).toString(8)}; ` +
        `the agent (uid ${euid}) serves only a socket owned by root or itself with mode ${want}: set SocketMode=${want} (and no SocketUser= other than the agent's) in the .socket unit`,
    );
  }

  /** Open calls per uid: a session's uid is its connection's caller, found by the id its socket carries. */
  private readonly streamShare: StreamShare = {
    admit: (session) => {
      const caller = this.callers.get(String((session.socket as Socket | undefined)?.remoteAddress));
      return caller ? this.uidStreams.tryTake(caller.uid) : noop;
    },
  };

  /** Connections taken from the listen queue by the pump rather than by libuv (tests, debug). */
  get pumped(): number {
    return this.pump?.taken ?? 0;
  }

  private onConnection(socket: Socket): void {
    // Every connection from the moment it is accepted, so shutdown can end even those never identified.
    this.open.add(socket);
    // 'close' comes once; on() saves the once() wrapper every connection would hold.
    socket.on('close', () => this.open.delete(socket));
    this.accept(socket);
  }

  /**
   * Never throws and never rejects: every failure refuses this one connection. The guard
   * is attached before anything else, so whatever the connection comes to hold is freed
   * on any path, including a caller that hangs up or exits while it is being identified.
   */
  private accept(socket: Socket): void {
    const guard = new ConnectionGuard(socket);
    this.identifyAndServe(socket, guard).catch((err: unknown) => {
      guard.release();
      this.refusals.refused(err);
    });
  }

  private async identifyAndServe(socket: Socket, guard: ConnectionGuard): Promise<void> {
    checkFdHeadroom(socket, this.fdLimit());
    const caller = await this.tracker.track(socket);
    guard.own(() => caller.close());
    const release = this.uidConnections.tryTake(caller.uid);
    if (!release) throw new UidShareError(caller.uid, this.uidConnections.share());
    guard.own(release);
    this.pacer.run(() => {
      try {
        this.serve(socket, guard, caller);
      } catch (err) {
        guard.release();
        this.refusals.refused(err);
      }
    });
  }

  private serve(socket: Socket, guard: ConnectionGuard, caller: Caller): void {
    // The grace period may have ended while this connection waited for its turn. A connection
    // accepted before the listener stopped accepting is still served while draining (see close()).
    if (guard.closed || !this.injector || this.closed) return guard.release();
    const id = `${PEER_PREFIX}${this.nextId++}`;
    this.callers.set(id, caller);
    this.sockets.add(socket);
    guard.own(() => {
      this.callers.delete(id);
      this.sockets.delete(socket);
    });
    // `front` may call back on a later turn (after the client's first request), so everything is checked again then.
    this.front.wrap(socket, (open) => {
      this.pump?.maybe();
      try {
        if (guard.closed || !this.injector || this.closed) return guard.release();
        const served = open();
        if (served !== socket) guard.own(() => served.destroy());
        Object.defineProperty(served, 'remoteAddress', { value: id, configurable: true });
        Object.defineProperty(served, 'remotePort', { value: undefined, configurable: true });
        this.injector.injectConnection(served);
      } catch (err) {
        guard.release();
        this.refusals.refused(err);
      }
    });
    socket.resume();
  }

  /**
   * Stops accepting at once, then drains: every connection already accepted is still
   * identified and served, each HTTP/2 session ends gracefully (session-drain.ts: the requests
   * the client sent are answered, then GOAWAY), and whatever is still open after `graceMs` is
   * destroyed. Never waits longer than `graceMs` (plus a tick), whatever clients do:
   * net.Server#close's own callback would wait for every connection.
   *
   * The listening socket: one this listener bound is removed at once, so clients fail fast
   * instead of queueing for an agent that may not come back; the connections already in its
   * listen queue are accepted and served before it is closed (closing it would reset them).
   * One systemd passed is only closed in this process: systemd holds the same socket,
   * connections queued in it or made from now on wait there for the next agent (accept(2) is
   * never called on it again here), and its file stays.
   */
  async close(graceMs = 2000): Promise<void> {
    const deadline = Date.now() + graceMs;
    let goawaySent = (): void => {};
    this.goaway = new Promise<void>((r) => (goawaySent = r));
    const server = this.net;
    this.net = undefined;
    if (server && this.boundPath !== undefined) {
      await this.removeOwnSocket();
      // No connect(2) can reach the socket now; take what is queued (libuv accepts on its next poll, the pump at once).
      await new Promise((r) => setImmediate(r));
      while ((this.pump?.drain() ?? 0) > 0);
    }
    this.pump?.stop();
    server?.close();
    if (this.sessions) void this.sessions.start(Math.min(graceMs / 2, GOAWAY_WAIT_MS)).then(goawaySent);
    else {
      this.injector?.drain(graceMs);
      goawaySent();
    }
    while (this.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.closed = true;
    for (const s of this.open) s.destroy();
    for (const s of this.sockets) s.destroy();
    this.injector?.destroy();
    goawaySent();
  }

  /**
   * Once close() has sent GOAWAY on every connection open when it began (or given up waiting
   * for a client's PING ACK): a stream ended after this is retried by its client on a new
   * connection, not on this one. Resolved if close() has not begun.
   */
  goawaySent(): Promise<void> {
    return this.goaway;
  }

  /** Only the socket this listener bound: a successor may already have bound its own there. */
  private async removeOwnSocket(): Promise<void> {
    if (this.boundPath === undefined) return;
    const ino = await lstat(this.boundPath).then((st) => st.ino, () => undefined);
    if (ino !== undefined && ino === this.boundIno) await rm(this.boundPath, { force: true });
  }
}

function noop(): void {}

/**
 * grpc-js's HTTP/2 servers (one per injector), from its private `http2Servers` map: grpc-js has
 * no public way to reach them, and the limits on sessions it reads directly are set there.
 * Empty if grpc-js changes that, and then every connection is filtered (see ConnectionFront.attach).
 */
function http2ServersOf(server: grpc.Server): Http2Server[] {
  const map = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(map instanceof Map)) return [];
  return [...map.keys()].filter((s): s is Http2Server => typeof (s as Partial<Http2Server> | null)?.updateSettings === 'function');
}

/** A bind failure in words an operator can act on (the directory checks have already passed). */
function bindError(path: string, euid: number, err: NodeJS.ErrnoException): SpiffeAgentError {
  const hint =
    err.code === 'EACCES'
      ? `its directory is not writable by the agent (uid ${euid}); run the agent as the directory's owner, remove the directory so the agent creates it, or choose another socket path`
      : err.code === 'EADDRINUSE'
        ? 'something was created there while the agent was binding; check what else manages this directory'
        : 'choose another socket path';
  return new SpiffeAgentError('socket_bind_failed', `endpoints: cannot bind ${path}: ${err.message}; ${hint}`, { cause: err });
}

async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new SpiffeAgentError('socket_path_taken', `endpoints: ${path} exists and is not a socket; refusing to remove it — remove it yourself or choose another socket path`);
  }
  await rm(path, { force: true }).catch((err: Error) => {
    throw new SpiffeAgentError('socket_path_taken', `endpoints: cannot remove the stale socket ${path}: ${err.message}; remove it, or run the agent as the user that created it`, { cause: err });
  });
}
