/**
 * Errors of the TPM 2.0 client. Messages start with "tpm:" and name the command; a TPM response
 * code keeps its decoding (rc, name, position) on the error, so tpm_devid and a TPM key manager
 * can act on it (retry, ask for a password) without parsing text.
 */
import { SpiffeAgentError } from '../errors.js';
import type { DecodedRC } from './rc.js';

declare module '../errors.js' {
  interface ErrorCodes {
    tpm: TpmErrorCode;
  }
}

export type TpmErrorCode =
  | 'tpm_device_not_found'
  | 'tpm_device_ambiguous'
  | 'tpm_device_unsupported'
  | 'tpm_io'
  | 'tpm_timeout'
  | 'tpm_malformed_response'
  | 'tpm_invalid_argument'
  | 'tpm_closed'
  | 'tpm_command_failed'
  | 'tpm_auth_failed'
  | 'tpm_lockout';

export class TpmError extends SpiffeAgentError<TpmErrorCode> {
  constructor(code: TpmErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The TPM answered a command with a response code other than success. */
export class TpmCommandError extends TpmError {
  constructor(
    code: 'tpm_command_failed' | 'tpm_auth_failed' | 'tpm_lockout',
    /** "TPM2_CreatePrimary". */
    readonly command: string,
    readonly rc: DecodedRC,
    message: string,
  ) {
    super(code, message);
  }
}
