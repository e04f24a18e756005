/**
 * join_token: the token itself is the payload (raw UTF-8) and the server expects no challenge.
 * The token is a secret: it appears in no message or log, only a short fingerprint of it.
 */
import { createHash } from 'node:crypto';
import { NodeAttestorError } from '../errors.js';
import type { AttestationStream, NodeAttestor } from '../types.js';

export const JOIN_TOKEN = 'join_token';

/** First 8 hex digits of the token's SHA-256, enough to tell tokens apart in logs. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 8);
}

export class JoinTokenAttestor implements NodeAttestor {
  readonly name = JOIN_TOKEN;

  /** An empty token is allowed here: a node resuming from its stored SVID never attests. */
  constructor(private readonly token: string) {}

  async attest(stream: AttestationStream): Promise<void> {
    if (this.token === '') throw new NodeAttestorError('node_attestor_config', 'nodeattestor(join_token): join token was not provided; set join_token, join_token_file or -joinToken');
    const challenge = await stream.sendAttestationData({ type: JOIN_TOKEN, payload: new TextEncoder().encode(this.token) });
    if (challenge !== undefined) {
      throw new NodeAttestorError('node_attestor_unexpected_challenge', 'nodeattestor(join_token): server issued unexpected challenge');
    }
  }
}
