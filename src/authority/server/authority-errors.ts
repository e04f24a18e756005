import { SpiffeAgentError, type ErrorCodes } from '../../errors.js';

/** Errors of the server authority (entry sync, bundles, workload SVID signing). */
declare module '../../errors.js' {
  interface ErrorCodes {
    serverAuthority:
      | 'bundle_malformed'
      | 'bundle_wrong_trust_domain'
      | 'sync_protocol'
      | 'jwtsvid_malformed'
      | 'svid_malformed'
      | 'rpc_missing'
      | 'stream_ended'
      | 'initial_sync_failed'
      | 'server_unavailable'
      | 'server_timeout'
      | 'entry_not_found'
      | 'svid_refused'
      | 'not_started'
      | 'closed';
  }
}

export class ServerAuthorityError extends SpiffeAgentError<ErrorCodes['serverAuthority']> {}
