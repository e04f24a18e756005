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
    const { libc, proc } = this;
    let closed = false;
    return {
      pid: cred.pid,
      uid: cred.uid,
      gid: cred.gid,
      startTime,
      async checkAlive() {
        const gone = (why: string): PeerError =>
          new PeerError('caller_gone', `peertracker: caller pid ${cred.pid} is no longer the process that connected (${why})`);
        if (closed) throw gone('connection closed');
        if (pidfd >= 0 && !libc.pidfdAlive(pidfd)) throw gone('process exited');
        let now: bigint;
        let owner: { uid: number; gid: number };
        try {
          [now, owner] = await Promise.all([proc.startTime(cred.pid), proc.owner(cred.pid)]);
        } catch {
          throw gone('process exited');
        }
        if (now !== startTime) throw gone('pid reused');
        // A non-dumpable process's /proc entry is owned by root, whoever runs it; the pidfd
        // and start time already pin the process, so only a real mismatch counts.
        const nonDumpable = owner.uid === 0 && owner.gid === 0;
        if (!nonDumpable && (owner.uid !== cred.uid || owner.gid !== cred.gid)) throw gone('credentials changed');
      },
      close() {
        if (closed) return;
        closed = true;
        if (pidfd >= 0) libc.close(pidfd);
      },
    };
  }
}
