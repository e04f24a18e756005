import { SpiffeAgentError } from '../errors.js';

/** The caller could not be identified, or is no longer the process that connected. */
export class PeerError extends SpiffeAgentError {}

/** Reading /proc failed (process gone, permission, malformed file). */
export class ProcError extends SpiffeAgentError {}

/** The process is out of file descriptors (EMFILE/ENFILE): refuse the one connection, keep serving. */
export class FdExhaustedError extends SpiffeAgentError {
  constructor(what: string, errno: number) {
    super('fd_exhausted', `${what} failed: out of file descriptors (errno ${errno}); raise LimitNOFILE / ulimit -n for the agent`);
  }
}

const EMFILE = 24;
const ENFILE = 23;
export const isFdExhaustion = (errno: number): boolean => errno === EMFILE || errno === ENFILE;
