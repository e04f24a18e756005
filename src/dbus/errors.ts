/**
 * Errors of the minimal D-Bus client. The systemd attestor wraps them into its own
 * "systemd: ..." errors; these keep the D-Bus detail (error name, address) for the cause chain.
 */
import { SpiffeAgentError } from '../errors.js';

declare module '../errors.js' {
  interface ErrorCodes {
    dbus: DBusErrorCode;
  }
}

export type DBusErrorCode =
  | 'dbus_address_invalid'
  | 'dbus_connect_failed'
  | 'dbus_auth_failed'
  | 'dbus_protocol'
  | 'dbus_connection_closed'
  | 'dbus_timeout'
  | 'dbus_aborted'
  | 'dbus_remote_error';

export class DBusError extends SpiffeAgentError<DBusErrorCode> {
  constructor(code: DBusErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** An error reply from the peer, e.g. org.freedesktop.systemd1.NoUnitForPID. */
export class DBusRemoteError extends DBusError {
  constructor(
    /** The D-Bus error name, e.g. "org.freedesktop.DBus.Error.ServiceUnknown". */
    readonly errorName: string,
    /** The human-readable text the peer sent, if any. */
    readonly detail: string,
  ) {
    super('dbus_remote_error', `dbus: ${errorName}${detail ? `: ${detail}` : ''}`);
  }
}
