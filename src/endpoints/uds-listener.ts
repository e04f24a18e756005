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

const PEER_PREFIX = 'spiffe-agent-conn-';

export class UdsListener {
  private net: NetServer | undefined;
  private injector: grpc.ConnectionInjector | undefined;
  private readonly callers = new Map<string, Caller>();
  private readonly sockets = new Set<Socket>();
  private nextId = 1;
  /** Inode of the socket file we bound, so shutdown never deletes a successor's socket. */
  private boundIno: number | undefined;

  constructor(
    private readonly path: string,
    private readonly grpcServer: grpc.Server,
    private readonly tracker: PeerTracker,
    private readonly log: Logger,
    /** 0o777 for the public Workload API (any local process may ask); tighter for admin. */
    private readonly mode = 0o777,
    /** Puts a filter between the client and gRPC (see h2-authority-filter.ts); identity is read first. */
    private readonly wrap: (socket: Socket) => Socket = (s) => s,
  ) {}

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
    const server = createServer({ allowHalfOpen: false }, (socket) => void this.accept(socket));
    this.net = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.path, this.mode);
    this.boundIno = (await stat(this.path)).ino;
  }

  private async accept(socket: Socket): Promise<void> {
    socket.on('error', () => {});
    let caller: Caller;
    try {
      caller = await this.tracker.track(socket);
    } catch (err) {
      this.log.warn({ [F.error]: (err as Error).message }, 'Connection refused: caller could not be identified');
      socket.destroy();
      return;
    }
    const id = `${PEER_PREFIX}${this.nextId++}`;
    const served = this.wrap(socket);
    Object.defineProperty(served, 'remoteAddress', { value: id, configurable: true });
    Object.defineProperty(served, 'remotePort', { value: undefined, configurable: true });
    this.callers.set(id, caller);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.callers.delete(id);
      this.sockets.delete(socket);
      caller.close();
    });
    if (!this.injector) {
      socket.destroy();
      return;
    }
    this.injector.injectConnection(served);
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
