/**
 * Owns the Unix listening socket so each accepted connection's peer credentials
 * can be read from the kernel before gRPC sees a byte, then hands the connection
 * to grpc-js through a connection injector. The connection is found again from a
 * call by an opaque id written into the socket's remoteAddress (which a Unix
 * socket otherwise leaves undefined); nothing the client sends can set it.
 */
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Caller, PeerTracker } from '../proc/peer-tracker.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { SpiffeAgentError } from '../errors.js';
import { systemClock, type Clock } from '../clock.js';
import { ConnectionGuard, RefusalLog, SetupPacer, cachedFor, checkFdHeadroom, listenBacklog } from './accept-guard.js';

const PEER_PREFIX = 'spiffe-agent-conn-';

export class UdsListener {
  private net: NetServer | undefined;
  private injector: grpc.ConnectionInjector | undefined;
  private readonly callers = new Map<string, Caller>();
  private readonly sockets = new Set<Socket>();
  private nextId = 1;
  /** Inode of the socket file we bound, so shutdown never deletes a successor's socket. */
  private boundIno: number | undefined;
  private readonly refusals: RefusalLog;
  private readonly fdLimit: () => number;
  private readonly pacer = new SetupPacer();

  constructor(
    private readonly path: string,
    private readonly grpcServer: grpc.Server,
    private readonly tracker: PeerTracker,
    private readonly log: Logger,
    /** 0o777 for the public Workload API (any local process may ask); tighter for admin. */
    private readonly mode = 0o777,
    /** Puts a filter between the client and gRPC (see h2-authority-filter.ts); identity is read first. */
    private readonly wrap: (socket: Socket) => Socket = (s) => s,
    opts: { clock?: Clock; fdLimit?: () => number } = {},
  ) {
    const clock = opts.clock ?? systemClock;
    this.refusals = new RefusalLog(log, clock);
    this.fdLimit = cachedFor(clock, 1000, opts.fdLimit ?? (() => Number.MAX_SAFE_INTEGER));
  }

  /** The caller behind a gRPC call, or undefined if the connection is unknown or gone. */
  callerOf(call: { getPeer(): string }): Caller | undefined {
    return this.callers.get(call.getPeer());
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  async listen(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o755 });
    await removeStaleSocket(this.path);
    this.injector = this.grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    // Paused until set up (see SetupPacer): in a burst, reads of connections still waiting
    // their turn would otherwise crowd accept(2) out of the event loop.
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: true }, (socket) => this.accept(socket));
    this.net = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: this.path, backlog: listenBacklog() }, () => {
        server.off('error', reject);
        // accept(2) failing (EMFILE once libuv's reserve fd is gone too) refuses a connection; it must not crash the agent.
        server.on('error', (err) => this.refusals.refused(err));
        resolve();
      });
    });
    await chmod(this.path, this.mode);
    this.boundIno = (await stat(this.path)).ino;
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
    // The listener may have been closed while this connection waited for its turn.
    if (guard.closed || !this.injector || !this.net) return guard.release();
    const id = `${PEER_PREFIX}${this.nextId++}`;
    const served = this.wrap(socket);
    guard.own(() => served.destroy());
    Object.defineProperty(served, 'remoteAddress', { value: id, configurable: true });
    Object.defineProperty(served, 'remotePort', { value: undefined, configurable: true });
    this.callers.set(id, caller);
    this.sockets.add(socket);
    guard.own(() => {
      this.callers.delete(id);
      this.sockets.delete(socket);
    });
    this.injector.injectConnection(served);
    socket.resume();
  }

  async close(graceMs = 2000): Promise<void> {
    const server = this.net;
    this.net = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.injector?.drain(graceMs);
    const deadline = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
    this.injector?.destroy();
    const ino = await stat(this.path).then((st) => st.ino, () => undefined);
    if (ino !== undefined && ino === this.boundIno) await rm(this.path, { force: true });
  }
}

async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new SpiffeAgentError('socket_path_taken', `endpoints: ${path} exists and is not a socket; refusing to remove it`);
  }
  await rm(path, { force: true });
}
