import { SpiffeAgentError } from '../../../errors.js';

declare module '../../../errors.js' {
  interface ErrorCodes {
    systemd: SystemdAttestorErrorCode;
  }
}

export type SystemdAttestorErrorCode =
  /** The system bus could not be reached or refused us. */
  | 'systemd_bus_unavailable'
  /** systemd (or the bus) answered a call with an error, e.g. NoUnitForPID. */
  | 'systemd_lookup_failed'
  /** A reply did not have the shape systemd's D-Bus API documents. */
  | 'systemd_bad_reply'
  | 'systemd_timeout'
  | 'systemd_aborted'
  | 'systemd_invalid_pid'
  | 'systemd_closed';

/** Every failure of the systemd attestor; `dbusErrorName` is set when the peer sent an error reply. */
export class SystemdAttestorError extends SpiffeAgentError<SystemdAttestorErrorCode> {
  constructor(
    code: SystemdAttestorErrorCode,
    message: string,
    options?: { cause?: unknown; dbusErrorName?: string | undefined },
  ) {
    super(code, message, options);
    this.dbusErrorName = options?.dbusErrorName;
  }

  readonly dbusErrorName: string | undefined;
}
