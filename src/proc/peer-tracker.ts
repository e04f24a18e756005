/**
 * Who is on the other end of a Unix socket, as the kernel says, and whether it is
 * still that same process. The defence against PID reuse has three layers: a pidfd
 * taken at accept time (it can never refer to a recycled pid), or without one (kernel < 5.3) the
 * start time from /proc/<pid>/stat, and the /proc/<pid> owner compared with SO_PEERCRED.
 *
 * None of these checks needs a privilege over the caller, so a non-root agent answers
 * exactly as root would. Where /proc does refuse the agent (hidepid), that is said as a
 * missing privilege (`proc_denied`), never as "process exited": only the pidfd, or a
 * /proc entry that is gone while no pidfd could be had, says a caller exited.
 */
import type { Socket } from 'node:net';
import type { Libc } from './libc.js';
import type { ProcReader } from './proc-reader.js';
import { PeerError, ProcError, privilegeHint } from './errors.js';

export interface Caller {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /**
   * Read at accept only when no pidfd could be had (a pidfd pins the process instead); undefined
   * then when /proc would not show it to the agent, and checkAlive() says which privilege is missing.
   */
  readonly startTime: bigint | undefined;
  /**
   * Throws PeerError('caller_gone') unless the process that connected is still there, unchanged;
   * ProcError('proc_denied') when /proc will not let the agent tell.
   */
  checkAlive(): Promise<void>;
  close(): void;
}

export class PeerTracker {
  constructor(
    private readonly libc: Libc,
    private readonly proc: ProcReader,
  ) {}

  async track(socket: Socket): Promise<Caller> {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) throw new PeerError('no_peer_fd', 'peertracker: connection has no file descriptor');
    const cred = this.libc.peerCred(fd);
    // pid 0: the peer is in another pid namespace we cannot see; refuse rather than guess.
    if (cred.pid <= 0) throw new PeerError('no_peer_pid', 'peertracker: caller pid is not visible from the agent pid namespace');
    const pidfd = this.libc.pidfdOpen(cred.pid);
    // A pidfd pins the process for every later check (see checkAlive), so the start time, the
    // only thing a /proc/<pid>/stat read at accept gives, is read only without one (kernel < 5.3).
    // That read cost ~4 % of the agent's CPU per connection (issue 19). Whether /proc lets the
    // agent look is then first asked by checkAlive, and the caller's exit by its pidfd.
    if (pidfd >= 0) return new TrackedCaller(this.libc, this.proc, cred.pid, cred.uid, cred.gid, undefined, pidfd, undefined);
    let startTime: bigint | undefined;
    let denied: ProcError | undefined;
    try {
      startTime = await this.proc.startTime(cred.pid);
    } catch (err) {
      const why = explain(this.libc, pidfd, cred.pid, err);
      if (!(why instanceof ProcError && why.code === 'proc_denied')) {
        if (pidfd >= 0) this.libc.close(pidfd);
        if (why instanceof PeerError) throw new PeerError('caller_gone', `peertracker: caller pid ${cred.pid} exited before it could be tracked`, { cause: err });
        throw why;
      }
      // Kept, not refused here: a refused connection would only see a reset, while every
      // call on it gets this reason as its status.
      denied = why;
    }
    return new TrackedCaller(this.libc, this.proc, cred.pid, cred.uid, cred.gid, startTime, pidfd, denied);
  }
}

/**
 * What a failed /proc read of a tracked caller means. The pidfd is asked after the read
 * failed, so a process that exits in between is still seen as exited.
 */
function explain(libc: Libc, pidfd: number, pid: number, err: unknown): Error {
  const exited = new PeerError('caller_gone', `peertracker: caller pid ${pid} is no longer the process that connected (process exited)`, { cause: err });
  if (pidfd >= 0 && libc.pidfdExited(pidfd)) return exited;
  if (err instanceof ProcError && err.code === 'process_gone') {
    const cause = err.cause as NodeJS.ErrnoException | undefined;
    // The entry is missing while the pidfd says the process runs: /proc hides it (hidepid=invisible).
    if (pidfd >= 0 && cause?.code === 'ENOENT') {
      return new ProcError('proc_denied', `peertracker: caller pid ${pid} is running but /proc/${pid} is not visible: ${privilegeHint('hidepid')}`, { cause: err });
    }
    // A zombie, or no pidfd to ask (kernel < 5.3): the entry alone decides.
    return exited;
  }
  if (err instanceof ProcError && err.code === 'proc_denied') {
    return new ProcError('proc_denied', `peertracker: cannot check caller pid ${pid}: ${err.message}`, { cause: err });
  }
  // Anything else (out of fds, EIO) is the agent's trouble, not the caller's exit.
  return err instanceof Error ? err : new Error(String(err));
}

/** A caller held for the life of its connection: a class, so each connection holds fields, not closures. */
class TrackedCaller implements Caller {
  private closed = false;

  constructor(
    private readonly libc: Libc,
    private readonly proc: ProcReader,
    readonly pid: number,
    readonly uid: number,
    readonly gid: number,
    readonly startTime: bigint | undefined,
    private readonly pidfd: number,
    private readonly denied: ProcError | undefined,
  ) {}

  async checkAlive(): Promise<void> {
    const gone = (why: string): PeerError =>
      new PeerError('caller_gone', `peertracker: caller pid ${this.pid} is no longer the process that connected (${why})`);
    if (this.closed) throw gone('connection closed');
    if (this.pidfd >= 0 && this.libc.pidfdExited(this.pidfd)) throw gone('process exited');
    // Without a pidfd or the start time seen at connect, nothing can show the pid was not reused since.
    if (this.pidfd < 0 && this.startTime === undefined) throw this.denied!;
    let now: bigint | undefined;
    let owner: { uid: number; gid: number };
    try {
      // A pidfd that has not exited pins the very process that connected: its pid cannot have been
      // reused, so the start time is read again only without one (kernel < 5.3). One /proc read less
      // on every answer (issue 19).
      if (this.pidfd >= 0) owner = await this.proc.owner(this.pid);
      else [now, owner] = await Promise.all([this.proc.startTime(this.pid), this.proc.owner(this.pid)]);
    } catch (err) {
      throw explain(this.libc, this.pidfd, this.pid, err);
    }
    if (now !== undefined && now !== this.startTime) throw gone('pid reused');
    // A non-dumpable process's /proc entry is owned by root, whoever runs it; the pidfd
    // and start time already pin the process, so only a real mismatch counts.
    const nonDumpable = owner.uid === 0 && owner.gid === 0;
    if (!nonDumpable && (owner.uid !== this.uid || owner.gid !== this.gid)) throw gone('credentials changed');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pidfd >= 0) this.libc.close(this.pidfd);
  }
}
