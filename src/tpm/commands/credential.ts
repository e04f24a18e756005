/**
 * TPM2_ActivateCredential (Part 3): the EK decrypts a secret a verifier sealed to (AK Name, EK
 * public key), and releases it only if the AK is loaded in the same TPM. The blobs come from the
 * SPIRE server without their 2-byte size prefix; they go back on the wire as TPM2Bs.
 */
import { CC } from '../constants.js';
import { Writer } from '../marshal.js';
import type { Command, Runner } from '../wire.js';
import { authorized, type Auth } from './common.js';

export interface ActivateArgs {
  /** The attestation key the credential names (ADMIN role: its password). */
  readonly activate: number;
  readonly activateAuth?: Auth;
  readonly activateLabel?: string;
  /** The EK (USER role: the default EK needs a PolicySecret(endorsement) session). */
  readonly key: number;
  readonly keyAuth?: Auth;
  readonly keyLabel?: string;
  /** TPM2B_ID_OBJECT contents: integrity HMAC then encrypted identity. */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents: the seed, encrypted to the EK. */
  readonly secret: Uint8Array;
}

export function activateCredentialCommand(a: ActivateArgs): Command<Buffer> {
  const params = new Writer().tpm2b(a.credentialBlob, 'credentialBlob').tpm2b(a.secret, 'secret').finish();
  return {
    spec: {
      cc: CC.ActivateCredential,
      handles: [authorized(a.activate, a.activateAuth, a.activateLabel ?? 'attestation key'), authorized(a.key, a.keyAuth, a.keyLabel ?? 'endorsement key')],
      params,
      responseHandles: 0,
    },
    parse({ params: r }) {
      const certInfo = r.tpm2b('certInfo', 64);
      r.end();
      return certInfo;
    },
  };
}

export async function activateCredential(tpm: Runner, a: ActivateArgs, signal?: AbortSignal): Promise<Buffer> {
  return tpm.run(activateCredentialCommand(a), signal);
}
