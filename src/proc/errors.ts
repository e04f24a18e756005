import { SpiffeAgentError, type ErrorCodes } from '../errors.js';

declare module '../errors.js' {
  interface ErrorCodes {
    peer: 'caller_gone' | 'no_peer_fd' | 'no_peer_pid';
    proc: 'process_gone' | 'proc_read' | 'proc_malformed';
    syscall: 'syscall_failed';
  }
}

/** The caller could not be identified, or is no longer the process that connected. */
export class PeerError extends SpiffeAgentError<ErrorCodes['peer']> {}

/** Reading /proc failed (process gone, permission, malformed file). */
export class ProcError extends SpiffeAgentError<ErrorCodes['proc']> {}

/** A libc call failed; the message names the errno. */
export class SyscallError extends SpiffeAgentError<ErrorCodes['syscall']> {}
