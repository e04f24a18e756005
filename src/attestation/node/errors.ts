import { SpiffeAgentError } from '../../errors.js';

export type NodeAttestorErrorCode = 'node_attestor_config' | 'node_attestor_unexpected_challenge' | 'node_attestor_challenge' | 'node_attestor_io' | 'node_attestor_listen';

/** A node attestor could not produce its payload or answer a challenge. Message starts with "nodeattestor(<name>): ". */
declare module '../../errors.js' {
  interface ErrorCodes {
    nodeAttestor: NodeAttestorErrorCode;
    /** The node attestor catalog: not exactly one NodeAttestor configured. */
    nodeAttestorCatalog: 'node_attestor_count';
  }
}

export class NodeAttestorError extends SpiffeAgentError<NodeAttestorErrorCode> {
  constructor(code: NodeAttestorErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
