/**
 * The systemd workload attestor: which unit a pid belongs to, asked of systemd over the system
 * D-Bus, as spire-agent's systemd plugin does. Selectors `id:<unit>` and `fragment_path:<file>`;
 * like SPIRE, fragment_path is emitted even when empty (transient units have no unit file).
 */
import type { PluginConfig } from '../../../config/types.js';
import type { Logger } from '../../../telemetry/logger.js';
import type { WorkloadAttestor } from '../types.js';
import { BusSession } from './bus-session.js';
import { parseSystemdConfig, type SystemdAttestorConfig } from './config.js';
import { DBusError, DBusRemoteError } from '../../../dbus/errors.js';
import { SystemdAttestorError } from './errors.js';
import { UnexpectedReply, unitInfoForPid } from './unit-lookup.js';

export const DEFAULT_CALL_TIMEOUT_MS = 5_000;

export interface SystemdAttestorOptions {
  readonly log: Logger;
  /** Per D-Bus call and for opening the connection. */
  readonly timeoutMs?: number;
  /** The uid claimed in D-Bus EXTERNAL auth; defaults to ours. */
  readonly uid?: number;
}

export class SystemdAttestor implements WorkloadAttestor {
  readonly name = 'systemd';
  private readonly bus: BusSession;
  private readonly timeoutMs: number;
  private closed = false;

  constructor(
    private readonly config: SystemdAttestorConfig,
    opts: SystemdAttestorOptions,
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.bus = new BusSession({
      address: config.systemBusAddress,
      uid: opts.uid ?? process.getuid?.() ?? 0,
      timeoutMs: this.timeoutMs,
      log: opts.log,
    });
  }

  /** Connections opened so far; stays 1 while the bus stays up, however many callers. */
  get connectionsOpened(): number {
    return this.bus.connectionsOpened;
  }

  async attest(pid: number, signal: AbortSignal): Promise<string[]> {
    if (this.closed) throw new SystemdAttestorError('systemd_closed', 'systemd: attestor is closed');
    if (!Number.isInteger(pid) || pid <= 0 || pid > 0xffffffff) {
      throw new SystemdAttestorError('systemd_invalid_pid', `systemd: invalid pid ${pid}`);
    }
    const opts = { timeoutMs: this.timeoutMs, signal };
    for (let attempt = 0; ; attempt++) {
      const conn = await this.connect(signal);
      try {
        const unit = await unitInfoForPid(conn, pid, opts);
        return [`id:${unit.id}`, `fragment_path:${unit.fragmentPath}`];
      } catch (err) {
        // A connection can die between two attestations without us having seen the close yet
        // (bus restart); one retry on a new connection hides that from callers.
        if (attempt === 0 && err instanceof DBusError && err.code === 'dbus_connection_closed' && !this.closed) continue;
        throw this.wrap(err, pid);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.bus.close();
  }

  private async connect(signal: AbortSignal): Promise<Awaited<ReturnType<BusSession['get']>>> {
    const address = this.config.systemBusAddress;
    try {
      return await raceAbort(this.bus.get(), signal);
    } catch (err) {
      if (signal.aborted) throw new SystemdAttestorError('systemd_aborted', 'systemd: attestation aborted while connecting to the system D-Bus', { cause: err });
      if (err instanceof DBusError && err.code === 'dbus_timeout') {
        throw new SystemdAttestorError('systemd_timeout', `systemd: timed out connecting to the system D-Bus at ${address}; is dbus-daemon responsive?`, { cause: err });
      }
      throw new SystemdAttestorError(
        'systemd_bus_unavailable',
        `systemd: cannot connect to the system D-Bus at ${address} (${(err as Error).message.replace(/^dbus: /, '')}); ` +
          'check that dbus is running and its socket is reachable (set DBUS_SYSTEM_BUS_ADDRESS or plugin_data system_bus_address)',
        { cause: err },
      );
    }
  }

  private wrap(err: unknown, pid: number): SystemdAttestorError {
    if (err instanceof SystemdAttestorError) return err;
    if (err instanceof DBusRemoteError) {
      return new SystemdAttestorError('systemd_lookup_failed', `systemd: failed to get unit of pid ${pid}: ${err.errorName}${err.detail ? `: ${err.detail}` : ''}`, {
        cause: err,
        dbusErrorName: err.errorName,
      });
    }
    if (err instanceof DBusError) {
      const detail = err.message.replace(/^dbus: /, '');
      switch (err.code) {
        case 'dbus_timeout': return new SystemdAttestorError('systemd_timeout', `systemd: pid ${pid}: ${detail}; is systemd responsive?`, { cause: err });
        case 'dbus_aborted': return new SystemdAttestorError('systemd_aborted', `systemd: attestation of pid ${pid} aborted`, { cause: err });
        case 'dbus_protocol': return new SystemdAttestorError('systemd_bad_reply', `systemd: pid ${pid}: ${detail}`, { cause: err });
        default: return new SystemdAttestorError('systemd_bus_unavailable', `systemd: pid ${pid}: ${detail}; will reconnect on the next attestation`, { cause: err });
      }
    }
    if (err instanceof UnexpectedReply) return new SystemdAttestorError('systemd_bad_reply', `systemd: pid ${pid}: ${err.message}`, { cause: err });
    return new SystemdAttestorError('systemd_lookup_failed', `systemd: pid ${pid}: ${(err as Error).message}`, { cause: err });
  }
}

/** Lets one caller stop waiting without cancelling the shared work it was waiting on. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}

export function createSystemdAttestor(
  plugin: PluginConfig,
  deps: { log: Logger; env: Record<string, string | undefined> },
): WorkloadAttestor {
  return new SystemdAttestor(parseSystemdConfig(plugin, deps.env), { log: deps.log });
}
