/**
 * The agent's KeyManager plugin interface, shaped like spire-agent's (pkg/agent/plugin/keymanager):
 * keys are named by id, generating a key for an id replaces the previous one, and the agent SVID
 * uses two slots so the old key stays usable until the new SVID is in place.
 *
 * Where a private key may live: wherever its key manager puts it, and nowhere else. At rest that
 * is the manager's choice (disk: PKCS#8 in keys.json, spire-agent's format; memory: this process
 * only; a TPM-sealed manager: a blob only that TPM can unseal). In use, the agent asks a key for
 * its public half and for signatures (the CSRs of attestation and renewal), never for its
 * private half, with one exception: TLS client authentication (see `unsealForTLS`).
 */
import type { KeyObject } from 'node:crypto';

export interface ManagedKey {
  readonly id: string;
  /** SubjectPublicKeyInfo DER (EC P-256), to match a key to a certificate and to put in a CSR. */
  readonly publicKeySpki: Uint8Array;
  /**
   * ECDSA with SHA-256 over `data`, the signature ASN.1 DER as X.509 and PKCS#10 carry it. The
   * manager hashes, so a device that signs digests (a TPM's TPM2_Sign) fits as well as a KeyObject.
   */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /**
   * The private key in this process's memory, for TLS client authentication and nothing else.
   * Node's TLS (OpenSSL) signs the handshake itself and takes no signing callback, so the mTLS
   * channel to the SPIRE server needs the key as a KeyObject. disk and memory return the key they
   * hold; a manager that keeps its key sealed at rest unseals it here, into memory, for as long as
   * the channel built on it lives. The session calls it once per channel (a rotation or a bundle
   * change), so a manager may unseal on each call rather than keep the key unsealed.
   */
  unsealForTLS(): Promise<KeyObject>;
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
