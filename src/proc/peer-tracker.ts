/**
 * Who is on the other end of a Unix socket, as the kernel says, and whether it is
 * still that same process. The defence against PID reuse has three layers: a pidfd
 * taken at accept time (it can never refer to a recycled pid), the start time from
 * /proc/<pid>/stat, and the /proc/<pid> owner compared with SO_PEERCRED.
 */
import type { Socket } from 'node:net';
import type { Libc } from './libc.js';
import type { ProcReader } from './proc-reader.js';
import { PeerError } from './errors.js';

export interface Caller {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly startTime: bigint;
  /** Throws PeerError('caller_gone') unless the process that connected is still there, unchanged. */
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
    let startTime: bigint;
    try {
      startTime = await this.proc.startTime(cred.pid);
    } catch (err) {
      if (pidfd >= 0) this.libc.close(pidfd);
      throw new PeerError('caller_gone', `peertracker: caller pid ${cred.pid} exited before it could be tracked`, { cause: err });
    }
    return new TrackedCaller(this.libc, this.proc, cred.pid, cred.uid, cred.gid, startTime, pidfd);
  }
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
    readonly startTime: bigint,
    private readonly pidfd: number,
  ) {}

  async checkAlive(): Promise<void> {
    const gone = (why: string): PeerError =>
      new PeerError('caller_gone', `peertracker: caller pid ${this.pid} is no longer the process that connected (${why})`);
    if (this.closed) throw gone('connection closed');
    if (this.pidfd >= 0 && this.libc.pidfdExited(this.pidfd)) throw gone('process exited');
    let now: bigint;
    let owner: { uid: number; gid: number };
    try {
      [now, owner] = await Promise.all([this.proc.startTime(this.pid), this.proc.owner(this.pid)]);
    } catch {
      throw gone('process exited');
    }
    if (now !== this.startTime) throw gone('pid reused');
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
