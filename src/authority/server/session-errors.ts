/**
 * Errors of the agent's session with a SPIRE server (bootstrap, attestation, agent SVID).
 * Codes are stable; messages start with the module and say what to do.
 */
import { SpiffeAgentError } from '../../errors.js';

export type SessionErrorCode =
  | 'bootstrap_bundle'
  | 'bootstrap_state'
  | 'server_identity'
  | 'server_unknown_authority'
  | 'attestation_failed'
  | 'attestation_protocol'
  | 'not_reattestable'
  | 'agent_banned'
  | 'agent_must_reattest'
  | 'rebootstrap_required'
  | 'storage_corrupt'
  | 'session_closed';

declare module '../../errors.js' {
  interface ErrorCodes {
    session: SessionErrorCode;
  }
}

export class SessionError extends SpiffeAgentError<SessionErrorCode> {
  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
