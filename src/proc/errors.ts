import { SpiffeAgentError, type ErrorCodes } from '../errors.js';

declare module '../errors.js' {
  interface ErrorCodes {
    peer: 'caller_gone' | 'no_peer_fd' | 'no_peer_pid';
    proc: 'process_gone' | 'proc_read' | 'proc_malformed' | 'proc_denied';
    syscall: 'syscall_failed' | 'fd_exhausted';
  }
}

/** The caller could not be identified, or is no longer the process that connected. */
export class PeerError extends SpiffeAgentError<ErrorCodes['peer']> {}

/**
 * Reading /proc failed (process gone, malformed file), or the agent may not read it:
 * `proc_denied` says which privilege the agent lacks, and never means the process exited.
 */
export class ProcError extends SpiffeAgentError<ErrorCodes['proc']> {}

/** The privilege an agent without root needs for another user's /proc entries, said the same way everywhere. */
export function privilegeHint(what: 'ptrace' | 'dac' | 'hidepid'): string {
  const agent = `the agent (uid ${process.geteuid?.() ?? '?'})`;
  switch (what) {
    case 'ptrace':
      return `${agent} needs CAP_SYS_PTRACE (the systemd unit grants it) or root to read the executable of another user's process, or of a non-dumpable one`;
    case 'dac':
      return `${agent} may not read that file (executable but not readable, mode 0711 say) and needs CAP_DAC_READ_SEARCH (the systemd unit grants it) or root`;
    case 'hidepid':
      return `/proc hides other users' processes from ${agent} (mounted with hidepid): it needs CAP_SYS_PTRACE (the systemd unit grants it), root, or the group named by the procfs gid= option`;
  }
}

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
