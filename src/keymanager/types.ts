/**
 * The agent's KeyManager plugin interface, shaped like spire-agent's (pkg/agent/plugin/keymanager):
 * keys are named by id, generating a key for an id replaces the previous one, and the agent SVID
 * uses two slots so the old key stays usable until the new SVID is in place.
 */
import type { KeyObject } from 'node:crypto';

export interface ManagedKey {
  readonly id: string;
  readonly privateKey: KeyObject;
  /** SubjectPublicKeyInfo DER, to match a key to a certificate. */
  readonly publicKeySpki: Uint8Array;
}

export interface KeyManager {
  readonly name: string;
  /** Generates an EC P-256 key (the only type the agent SVID uses) under `id`, replacing any key with that id. */
  generateKey(id: string): Promise<ManagedKey>;
  getKeys(): Promise<readonly ManagedKey[]>;
  /** Releases what the manager holds open (a TPM handle). */
  close?(): Promise<void>;
}

export const AGENT_SVID_KEY_A = 'agent-svid-A';
export const AGENT_SVID_KEY_B = 'agent-svid-B';

/** spire-agent's slot rule: A unless the current key is A, then B. */
export function nextAgentSVIDKeyId(current: ManagedKey | undefined): string {
  return current?.id === AGENT_SVID_KEY_A ? AGENT_SVID_KEY_B : AGENT_SVID_KEY_A;
}
