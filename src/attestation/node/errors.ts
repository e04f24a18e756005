import { SpiffeAgentError } from '../../errors.js';

export type NodeAttestorErrorCode = 'node_attestor_config' | 'node_attestor_unexpected_challenge' | 'node_attestor_challenge' | 'node_attestor_io';

/** A node attestor could not produce its payload or answer a challenge. Message starts with "nodeattestor(<name>): ". */
export class NodeAttestorError extends SpiffeAgentError {
  declare readonly code: NodeAttestorErrorCode;

  constructor(code: NodeAttestorErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
