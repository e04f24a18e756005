import { SpiffeAgentError, type ErrorCodes } from '../../errors.js';

declare module '../../errors.js' {
  interface ErrorCodes {
    embeddedAuthority: 'ca_store' | 'ca_trust_domain' | 'ca_ttl' | 'ca_not_valid' | 'csr_invalid' | 'entries_file' | 'federated_bundle' | 'jwt_audience' | 'not_started' | 'closed';
  }
}

export class EmbeddedAuthorityError extends SpiffeAgentError<ErrorCodes['embeddedAuthority']> {}
