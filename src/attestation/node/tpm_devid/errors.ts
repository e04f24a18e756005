/**
 * tpm_devid's own error codes, so an operator (and the README's error table) can tell "the TPM is
 * not there" from "a password is wrong" from "the files do not belong together" without reading
 * the text. Messages start with "nodeattestor(tpm_devid): " and name the setting to fix; the TPM
 * client's error, when there is one, is kept as `cause` and its text appended.
 */
import { SpiffeAgentError } from '../../../errors.js';

export type TpmDevidErrorCode =
  /** devid_cert_path, devid_pub_path or devid_priv_path cannot be read, parsed, or do not belong together. */
  | 'tpm_devid_files'
  /** No TPM at tpm_device_path, or none (or several) found by auto-detection. */
  | 'tpm_devid_no_tpm'
  /** NV index 0x01c00002 holds no RSA EK certificate. */
  | 'tpm_devid_ek_cert_missing'
  /** The TPM refused a password: owner or endorsement hierarchy, or the DevID key's. */
  | 'tpm_devid_auth'
  /** Any other TPM failure during the exchange (lockout, a blob made under another TPM, ...). */
  | 'tpm_devid_tpm'
  /** The server's challenge is not one tpm_devid can answer. */
  | 'tpm_devid_challenge';

declare module '../../../errors.js' {
  interface ErrorCodes {
    tpmDevid: TpmDevidErrorCode;
  }
}

export class TpmDevidError extends SpiffeAgentError<TpmDevidErrorCode> {
  constructor(code: TpmDevidErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, `nodeattestor(tpm_devid): ${message}`, options);
  }
}
