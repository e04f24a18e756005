import { SpiffeAgentError } from '../../errors.js';

/** Codes: ca_store, ca_trust_domain, csr_invalid, entries_file, federated_bundle, not_started, closed, jwt_sign. */
export class EmbeddedAuthorityError extends SpiffeAgentError {}
