/**
 * Tells systemd (Type=notify) when the agent is ready, when it is stopping, and that it is
 * alive (WatchdogSec=). Without NOTIFY_SOCKET every call does nothing, so the agent runs
 * the same outside systemd. A failed send is logged once and never stops the agent: systemd
 * then times the start out or restarts the unit, which is its call to make.
 */
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import type { SdCalls } from './sd-daemon.js';

export interface SdNotifierDeps {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly pid: number;
  readonly log: Logger;
  /** Loaded only when NOTIFY_SOCKET is set, so an agent outside systemd binds nothing. */
  readonly calls: () => SdCalls;
}

export class SdNotifier {
  private readonly address: string | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private warned = false;

  constructor(private readonly d: SdNotifierDeps) {
    const a = d.env.NOTIFY_SOCKET;
    this.address = a === undefined || a === '' ? undefined : a;
  }

  get enabled(): boolean {
    return this.address !== undefined;
  }

  /** READY=1 once the socket serves (the first sync is done), then the watchdog if the unit asks for one. */
  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}\nMAINPID=${this.d.pid}`);
    const interval = watchdogIntervalMs(this.d.env, this.d.pid);
    if (interval !== undefined && this.address !== undefined) {
      // Unref'd: the listeners hold the process; a watchdog alone must not keep a stopping agent up.
      this.watchdog = setInterval(() => this.send('WATCHDOG=1'), interval).unref();
    }
  }

  stopping(): void {
    this.stopWatchdog();
    this.send('STOPPING=1\nSTATUS=Shutting down');
  }

  close(): void {
    this.stopWatchdog();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private send(message: string): void {
    if (this.address === undefined) return;
    const problem = this.d.calls().notify(this.address, message);
    if (problem === undefined || this.warned) return;
    this.warned = true;
    this.d.log.warn({ [F.error]: problem, [F.path]: this.address }, 'Could not notify systemd (sd_notify); with Type=notify the unit will not count as started');
  }
}

/**
 * Half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, or undefined when the unit set no
 * watchdog or set it for another process (WATCHDOG_PID).
 */
export function watchdogIntervalMs(env: Readonly<Record<string, string | undefined>>, pid: number): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[0-9]{1,15}$/.test(usec) || Number(usec) === 0) return undefined;
  const forPid = env.WATCHDOG_PID;
  if (forPid !== undefined && forPid !== '' && forPid !== String(pid)) return undefined;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}
