import { SpiffeAgentError } from '../errors.js';

/** The caller could not be identified, or is no longer the process that connected. */
export class PeerError extends SpiffeAgentError {}

/** Reading /proc failed (process gone, permission, malformed file). */
export class ProcError extends SpiffeAgentError {}

/** A libc call failed; the message names the errno. */
export class SyscallError extends SpiffeAgentError {}
