/**
 * The few libc calls Node does not expose: SO_PEERCRED, pidfd_open, poll on a pidfd,
 * socketpair, accept4, getrlimit. Loaded on first use (koffi ships prebuilt binaries,
 * so nothing is compiled at install time).
 */
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { FdExhaustedError, SyscallError, isFdExhaustion } from './errors.js';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SYS_pidfd_open = 434;
const POLLIN = 0x1;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;

export interface Ucred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface Libc {
  peerCred(fd: number): Ucred;
  /**
   * Returns a pidfd, or -1 when the kernel lacks pidfd_open (< 5.3) or the process is gone.
   * Throws FdExhaustedError when the agent is out of fds: a caller must not be tracked
   * without its pidfd just because someone else used up the agent's descriptors.
   */
  pidfdOpen(pid: number): number;
  /**
   * True once the process the pidfd refers to has exited (a zombie counts), false while it runs.
   * Needs no permission over the process; throws SyscallError if the kernel cannot answer.
   */
  pidfdExited(pidfd: number): boolean;
  close(fd: number): void;
  /** The soft RLIMIT_NOFILE, read each time (an operator may change it with prlimit). */
  fdLimit(): number;
  /** A connected pair of AF_UNIX stream sockets (close-on-exec); FdExhaustedError when out of fds. */
  socketpair(): [number, number];
  /**
   * One connection from a listening socket's queue (non-blocking, close-on-exec), or -1 when the
   * queue is empty; FdExhaustedError when out of fds, SyscallError for anything else.
   */
  accept(listenFd: number): number;
}

/** "EBADF (errno 9)" for the errno the last libc call left, so a failure says which one it was. */
function lastErrno(): string {
  const n = koffi.errno();
  const name = Object.entries(osConstants.errno).find(([, v]) => v === n)?.[0];
  return name ? `${name} (errno ${n})` : `errno ${n}`;
}

// koffi registers struct types by name for the whole process, so defining them a second time
// throws; the bindings are therefore made once per process and shared (they hold no state).
let loaded: Libc | undefined;

export function loadLibc(): Libc {
  loaded ??= bindLibc();
  return loaded;
}

function bindLibc(): Libc {
  const lib = koffi.load('libc.so.6');
  // struct ucred and struct pollfd are read and written through buffers made once, passed as plain
  // pointers: koffi's struct marshalling built two objects and an array per call, on every connection's
  // path (issue 19's profile). The calls are synchronous, so one buffer each cannot be shared by two.
  const getsockopt = lib.func('int getsockopt(int, int, int, void *, void *)');
  const ucred = Buffer.alloc(12); // int32 pid, uint32 uid, uint32 gid
  const ucredLen = Buffer.alloc(4);
  const syscall3 = lib.func('long syscall(long, int, int, int)');
  const pollFn = lib.func('int poll(void *, unsigned long, int)');
  const pollfd = Buffer.alloc(8); // int fd, int16 events, int16 revents
  const closeFn = lib.func('int close(int)');
  const socketpairFn = lib.func('int socketpair(int, int, int, _Out_ int *sv)');
  const accept4 = lib.func('int accept4(int, void *, void *, int)');
  koffi.struct('spiffe_agent_rlimit', { cur: 'uint64', max: 'uint64' });
  const getrlimit = lib.func('int getrlimit(int, _Out_ spiffe_agent_rlimit *)');
  return {
    peerCred(fd) {
      ucred.fill(0);
      ucredLen.writeUInt32LE(12, 0);
      const rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred, ucredLen) as number;
      if (rc !== 0) throw new SyscallError('syscall_failed', `libc: getsockopt(SO_PEERCRED) failed on fd ${fd}: ${lastErrno()}`);
      return { pid: ucred.readInt32LE(0), uid: ucred.readUInt32LE(4), gid: ucred.readUInt32LE(8) };
    },
    pidfdOpen(pid) {
      const fd = Number(syscall3(SYS_pidfd_open, pid, 0, 0));
      if (fd < 0 && isFdExhaustion(koffi.errno())) throw new FdExhaustedError('peertracker: pidfd_open', koffi.errno());
      return fd;
    },
    pidfdExited(pidfd) {
      // A pidfd turns readable when its process exits. pidfd_send_signal(0) was used before, but
      // signalling another uid's process needs CAP_KILL: its EPERM made every such caller look
      // exited to an agent running as the systemd unit does (non-root, no CAP_KILL).
      for (;;) {
        pollfd.writeInt32LE(pidfd, 0);
        pollfd.writeInt16LE(POLLIN, 4);
        pollfd.writeInt16LE(0, 6);
        const rc = pollFn(pollfd, 1, 0) as number;
        if (rc === 0) return false;
        if (rc > 0) {
          const revents = pollfd.readInt16LE(6);
          if (revents & POLLNVAL) throw new SyscallError('syscall_failed', `libc: poll on pidfd ${pidfd}: not an open descriptor (POLLNVAL)`);
          // POLLHUP: newer kernels also report a reaped process that way.
          return (revents & (POLLIN | POLLHUP)) !== 0;
        }
        if (koffi.errno() !== osConstants.errno.EINTR) throw new SyscallError('syscall_failed', `libc: poll on pidfd ${pidfd} failed: ${lastErrno()}`);
      }
    },
    close(fd) {
      closeFn(fd);
    },
    fdLimit() {
      const RLIMIT_NOFILE = 7;
      const out: { cur?: number | bigint } = {};
      if ((getrlimit(RLIMIT_NOFILE, out) as number) !== 0) return Number.MAX_SAFE_INTEGER;
      // RLIM_INFINITY comes back as a huge bigint; anything past 2^53 means "no limit" here.
      return Math.min(Number(out.cur ?? Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
    },
    socketpair() {
      const AF_UNIX = 1;
      const SOCK_STREAM = 1;
      const SOCK_CLOEXEC = 0o2000000;
      const sv = [0, 0];
      if ((socketpairFn(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) as number) !== 0) {
        const errno = koffi.errno();
        if (isFdExhaustion(errno)) throw new FdExhaustedError('endpoints: socketpair', errno);
        throw new SyscallError('syscall_failed', `libc: socketpair(AF_UNIX, SOCK_STREAM) failed: ${lastErrno()}; raise the open-file limit (ulimit -n) if it is EMFILE`);
      }
      return [sv[0]!, sv[1]!];
    },
    accept(listenFd) {
      const SOCK_NONBLOCK = 0o4000;
      const SOCK_CLOEXEC = 0o2000000;
      const fd = accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC) as number;
      if (fd >= 0) return fd;
      const errno = koffi.errno();
      // EAGAIN: the queue is empty. ECONNABORTED: a client gave up while queued; nothing to serve.
      if (errno === osConstants.errno.EAGAIN || errno === osConstants.errno.ECONNABORTED || errno === osConstants.errno.EINTR) return -1;
      if (isFdExhaustion(errno)) throw new FdExhaustedError('endpoints: accept', errno);
      throw new SyscallError('syscall_failed', `libc: accept4 failed on fd ${listenFd}: ${lastErrno()}`);
    },
  };
}
