import { SpiffeAgentError, type ErrorCodes } from '../errors.js';

declare module '../errors.js' {
  interface ErrorCodes {
    peer: 'caller_gone' | 'no_peer_fd' | 'no_peer_pid';
    proc: 'process_gone' | 'proc_read' | 'proc_malformed';
    syscall: 'syscall_failed' | 'fd_exhausted';
  }
}

/** The caller could not be identified, or is no longer the process that connected. */
export class PeerError extends SpiffeAgentError<ErrorCodes['peer']> {}

/** Reading /proc failed (process gone, permission, malformed file). */
export class ProcError extends SpiffeAgentError<ErrorCodes['proc']> {}

/** A libc call failed; the message names the errno. */
export class SyscallError extends SpiffeAgentError<ErrorCodes['syscall']> {}

/** The process is out of file descriptors (EMFILE/ENFILE): refuse the one connection, keep serving. */
export class FdExhaustedError extends SpiffeAgentError<ErrorCodes['syscall']> {
  constructor(what: string, errno: number) {
    super('fd_exhausted', `${what} failed: out of file descriptors (errno ${errno}); raise LimitNOFILE / ulimit -n for the agent`);
  }
}

const EMFILE = 24;
const ENFILE = 23;
export const isFdExhaustion = (errno: number): boolean => errno === EMFILE || errno === ENFILE;
