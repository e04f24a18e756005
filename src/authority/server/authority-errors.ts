import { SpiffeAgentError } from '../../errors.js';

/** Errors of the server authority (entry sync, bundles, workload SVID signing). */
export class ServerAuthorityError extends SpiffeAgentError {}
