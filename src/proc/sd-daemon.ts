/**
 * The two halves of systemd's daemon protocol that an agent under a socket unit needs:
 * sockets passed in (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES; sd_listen_fds(3)) and
 * readiness sent back (a datagram to NOTIFY_SOCKET; sd_notify(3)).
 *
 * Node has no AF_UNIX datagram sockets and cannot ask a descriptor what it is bound to,
 * so socket(2), sendto(2), getsockname(2) and getsockopt(2) are called through koffi,
 * which the agent already loads for SO_PEERCRED (src/proc/libc.ts). No package is added:
 * the npm ones for sd_notify either compile a C addon against libsystemd (a build step and
 * a library the agent's image need not have) or shell out to systemd-notify, which
 * systemd only credits to the right unit when NotifyAccess=all.
 */
import koffi from 'koffi';
import { fstatSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

/** systemd passes sockets from this descriptor on (SD_LISTEN_FDS_START). */
export const SD_LISTEN_FDS_START = 3;

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
const SO_DOMAIN = 39;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): 2 bytes of family, 108 of path. */
const SOCKADDR_UN_SIZE = 110;

/** A descriptor systemd passed, with the name its unit gave it (FileDescriptorName=, else the unit's name). */
export interface PassedFd {
  readonly fd: number;
  readonly name: string;
}

/**
 * The descriptors passed to this process, or [] when there are none or they were meant for
 * another process (LISTEN_PID names a different pid, as after a fork). Throws on values
 * sd_listen_fds(3) would refuse, since a unit that passes sockets the agent cannot read
 * is a configuration error the operator must see.
 */
export function passedFds(env: Readonly<Record<string, string | undefined>>, pid: number): PassedFd[] {
  const count = env.LISTEN_FDS;
  if (count === undefined || count === '') return [];
  const forPid = env.LISTEN_PID;
  if (forPid !== undefined && forPid !== '' && forPid !== String(pid)) return [];
  if (!/^[0-9]{1,4}$/.test(count)) throw new Error(`LISTEN_FDS=${JSON.stringify(count)} is not a number of descriptors`);
  const n = Number(count);
  const names = env.LISTEN_FDNAMES === undefined || env.LISTEN_FDNAMES === '' ? [] : env.LISTEN_FDNAMES.split(':');
  if (names.length > 0 && names.length !== n) {
    throw new Error(`LISTEN_FDNAMES names ${names.length} descriptors but LISTEN_FDS=${n}`);
  }
  return Array.from({ length: n }, (_, i) => ({ fd: SD_LISTEN_FDS_START + i, name: names[i] ?? 'unknown' }));
}

/** What a passed descriptor really is, read from the kernel (never from the environment). */
export interface SocketFacts {
  readonly isSocket: boolean;
  /** AF_UNIX = 1; undefined when not a socket. */
  readonly family?: number;
  readonly stream?: boolean;
  readonly listening?: boolean;
  /** The bound path; '' for an unbound socket, '@name' for an abstract one. */
  readonly path?: string;
}

export interface SdCalls {
  describe(fd: number): SocketFacts;
  /** Marks a passed descriptor close-on-exec, so no child the agent spawns inherits the listener. */
  setCloexec(fd: number): void;
  /** Sends one datagram to a NOTIFY_SOCKET address ('/path' or '@abstract'); returns the errno text on failure. */
  notify(address: string, message: string): string | undefined;
}

function errnoText(n: number): string {
  const name = Object.entries(osConstants.errno).find(([, v]) => v === n)?.[0];
  return name ? `${name} (errno ${n})` : `errno ${n}`;
}

// Bound once per process, as libc.ts does; the bindings hold no state.
let loaded: SdCalls | undefined;

export function loadSdCalls(): SdCalls {
  loaded ??= bindSdCalls();
  return loaded;
}

function bindSdCalls(): SdCalls {
  const lib = koffi.load('libc.so.6');
  const getsockopt = lib.func('int getsockopt(int, int, int, _Out_ int *, _Inout_ uint32_t *)');
  const getsockname = lib.func('int getsockname(int, void *, _Inout_ uint32_t *)');
  const socket = lib.func('int socket(int, int, int)');
  const sendto = lib.func('long sendto(int, const void *, unsigned long, int, const void *, uint32_t)');
  const close = lib.func('int close(int)');
  const fcntl = lib.func('int fcntl(int, int, int)');
  const intOpt = (fd: number, opt: number): number | undefined => {
    const out = [0];
    return getsockopt(fd, SOL_SOCKET, opt, out, [4]) === 0 ? (out[0] as number) : undefined;
  };
  return {
    describe(fd) {
      let isSocket = false;
      try {
        isSocket = fstatSync(fd).isSocket();
      } catch {
        return { isSocket: false };
      }
      if (!isSocket) return { isSocket };
      const family = intOpt(fd, SO_DOMAIN);
      const stream = intOpt(fd, SO_TYPE) === SOCK_STREAM;
      const listening = intOpt(fd, SO_ACCEPTCONN) === 1;
      if (family !== AF_UNIX) return { isSocket, family, stream, listening };
      const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
      const len = [SOCKADDR_UN_SIZE];
      if (getsockname(fd, addr, len) !== 0) return { isSocket, family, stream, listening };
      const raw = addr.subarray(2, Math.min(len[0] as number, SOCKADDR_UN_SIZE));
      const path = raw.length > 0 && raw[0] === 0 ? `@${raw.subarray(1).toString('utf8')}` : raw.toString('utf8').replace(/\0.*$/s, '');
      return { isSocket, family, stream, listening, path };
    },
    setCloexec(fd) {
      fcntl(fd, F_SETFD, FD_CLOEXEC);
    },
    notify(address, message) {
      const path = Buffer.from(address.startsWith('@') ? `\0${address.slice(1)}` : address, 'utf8');
      if (path.length === 0 || path.length > SOCKADDR_UN_SIZE - 2) return `NOTIFY_SOCKET ${JSON.stringify(address)} is not a usable socket address`;
      const addr = Buffer.alloc(2 + path.length + (address.startsWith('@') ? 0 : 1));
      addr.writeUInt16LE(AF_UNIX, 0);
      path.copy(addr, 2);
      const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number;
      if (fd < 0) return `socket: ${errnoText(koffi.errno())}`;
      try {
        const msg = Buffer.from(message, 'utf8');
        const sent = Number(sendto(fd, msg, msg.length, MSG_NOSIGNAL, addr, addr.length));
        return sent < 0 ? `sendto ${address}: ${errnoText(koffi.errno())}` : undefined;
      } finally {
        close(fd);
      }
    },
  };
}
