/**
 * The attestor's single connection to the system bus: opened on first use, shared by concurrent
 * callers (including while it is still opening), and replaced after it drops.
 */
import type { Logger } from '../../../telemetry/logger.js';
import { DBusConnection } from '../../../dbus/connection.js';
import { DBusError } from '../../../dbus/errors.js';

export interface BusSessionOptions {
  readonly address: string;
  readonly uid: number;
  readonly timeoutMs: number;
  readonly log: Logger;
}

export class BusSession {
  private current: Promise<DBusConnection> | undefined;
  private opened = 0;
  private closing = false;

  constructor(private readonly opts: BusSessionOptions) {}

  /** How many connections this session has opened so far (1 while the bus stays up). */
  get connectionsOpened(): number {
    return this.opened;
  }

  /** The live connection, opening one if there is none. */
  get(): Promise<DBusConnection> {
    if (this.closing) return Promise.reject(new DBusError('dbus_connection_closed', 'dbus: session closed'));
    if (this.current) return this.current;
    const p = this.open();
    this.current = p;
    p.then(
      (conn) => conn.onClose((reason) => {
        if (this.current === p) this.current = undefined;
        if (!this.closing) this.opts.log.warn({ address: conn.address, error: reason.message }, 'System D-Bus connection lost; reconnecting on next attestation');
      }),
      () => {
        // A failed open is not cached: the next attestation tries again.
        if (this.current === p) this.current = undefined;
      },
    );
    return p;
  }

  async close(): Promise<void> {
    this.closing = true;
    const p = this.current;
    this.current = undefined;
    const conn = await p?.catch(() => undefined);
    await conn?.close();
  }

  private async open(): Promise<DBusConnection> {
    const { address, uid, timeoutMs, log } = this.opts;
    // Not tied to any caller's AbortSignal: one caller giving up must not fail the others sharing the open.
    const conn = await DBusConnection.open(address, { uid, timeoutMs });
    this.opened++;
    log.debug({ address: conn.address, unique_name: conn.uniqueName }, 'Connected to the system D-Bus');
    if (this.closing) await conn.close();
    return conn;
  }
}
