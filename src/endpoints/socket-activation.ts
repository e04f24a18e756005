/**
 * Sockets handed over by systemd (a .socket unit, or anything speaking sd_listen_fds(3)).
 * The socket unit keeps the listening socket open while the agent restarts, so a workload
 * that connects then waits in the listen queue instead of being refused (spire issue 804).
 *
 * What a passed descriptor is, is read from the kernel: it must be a listening AF_UNIX
 * stream socket bound to a path, and each one must be claimed by a configured socket path
 * (`socket_path`, `admin_socket_path`). Anything else is refused with what was passed and
 * what to change in the unit, rather than served on a socket the config does not name.
 */
import { SpiffeAgentError } from '../errors.js';
import { passedFds, type SdCalls } from '../proc/sd-daemon.js';

const AF_UNIX = 1;

export class SocketActivationError extends SpiffeAgentError {
  constructor(message: string) {
    super('socket_activation_invalid', message);
  }
}

export interface PassedSocket {
  readonly fd: number;
  readonly name: string;
  /** The path the socket is bound to, as the kernel reports it. */
  readonly path: string;
}

export class SocketActivation {
  private readonly unclaimed: Map<number, PassedSocket>;

  private constructor(readonly sockets: readonly PassedSocket[]) {
    this.unclaimed = new Map(sockets.map((s) => [s.fd, s]));
  }

  /** Undefined when systemd passed nothing to this process: the agent then binds its sockets itself. */
  static fromEnv(env: Readonly<Record<string, string | undefined>>, pid: number, calls: () => SdCalls): SocketActivation | undefined {
    let fds;
    try {
      fds = passedFds(env, pid);
    } catch (err) {
      throw new SocketActivationError(`endpoints: socket activation: ${(err as Error).message}; LISTEN_FDS and LISTEN_FDNAMES are set by systemd, check what starts the agent`);
    }
    if (fds.length === 0) return undefined;
    const sys = calls();
    const sockets = fds.map(({ fd, name }) => {
      const f = sys.describe(fd);
      const what = `systemd passed fd ${fd} (name "${name}")`;
      const fix = 'the agent takes only listening Unix stream sockets: ListenStream=<socket_path> in the .socket unit';
      if (!f.isSocket) throw new SocketActivationError(`endpoints: ${what}, which is not a socket; ${fix}`);
      if (f.family !== AF_UNIX) throw new SocketActivationError(`endpoints: ${what}, which is not a Unix socket (address family ${f.family ?? '?'}); ${fix}`);
      if (!f.stream) throw new SocketActivationError(`endpoints: ${what}, which is not a stream socket; ${fix} (not ListenDatagram= or ListenSequentialPacket=)`);
      if (!f.listening) throw new SocketActivationError(`endpoints: ${what}, which is not listening (Accept=yes passes connections); ${fix} with Accept=no`);
      if (!f.path || f.path.startsWith('@')) {
        throw new SocketActivationError(`endpoints: ${what}, which is bound to ${f.path ? `the abstract name ${f.path}` : 'no path'}; ${fix}`);
      }
      // The agent keeps the descriptor; a child it starts (a plugin, a helper) must not.
      sys.setCloexec(fd);
      return { fd, name, path: f.path };
    });
    return new SocketActivation(sockets);
  }

  /** The passed socket bound to one of `paths` (the socket path as written, and in its resolved directory), claimed once. */
  take(...paths: string[]): PassedSocket | undefined {
    for (const s of this.unclaimed.values()) {
      if (paths.includes(s.path)) {
        this.unclaimed.delete(s.fd);
        return s;
      }
    }
    return undefined;
  }

  /** After every listener has claimed its socket: a socket left over is one the config does not name. */
  checkAllClaimed(configured: readonly string[]): void {
    const left = [...this.unclaimed.values()];
    if (left.length === 0) return;
    const list = left.map((s) => `fd ${s.fd} "${s.name}" bound to ${s.path}`).join(', ');
    throw new SocketActivationError(
      `endpoints: systemd passed ${list}, which no configured socket uses (${configured.join(', ')}); make ListenStream= in the .socket unit and socket_path (or admin_socket_path) in agent.conf the same path`,
    );
  }
}
