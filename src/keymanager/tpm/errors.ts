/**
 * Codes of KeyManager "tpm". A damaged key file is `keymanager_corrupt`, as for disk; these are
 * the TPM's part: the keys belong to another TPM (or this one was cleared), or the TPM could not
 * be used at all. Both are final: a retry does not change which TPM this is.
 */
import { SpiffeAgentError } from '../../errors.js';

declare module '../../errors.js' {
  interface ErrorCodes {
    keymanagerTpm: KeyManagerTpmErrorCode;
  }
}

export type KeyManagerTpmErrorCode =
  /** The key file was sealed under another storage root key: another TPM, or this one after TPM2_Clear. */
  | 'keymanager_tpm_foreign'
  /** Opening the TPM or a command on it failed (no device, wrong owner password, lockout, no free slot). */
  | 'keymanager_tpm_failed';

export class KeyManagerTpmError extends SpiffeAgentError<KeyManagerTpmErrorCode> {
  constructor(code: KeyManagerTpmErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
