/**
 * One audit record per Workload API decision, so an audit can reconstruct who got
 * which identity and why: the caller as the kernel saw it, the selectors found, the
 * entries matched, the SPIFFE IDs and serials issued, or the reason for denial.
 * Selector values whose type is not listed in log_selectors are redacted; keys and
 * tokens are never part of a record. The caller's binary is the value of the
 * `unix:path` selector under another name, so it is shown exactly when that selector
 * would be: otherwise redacting the selector would hide nothing.
 */
import type { Selector } from '../domain/types.js';
import type { Logger } from './logger.js';
import { NO_METRICS, type CounterHandle, type Metrics } from './metrics/index.js';
import { F } from './names.js';
import type { PlainValue } from './plain-line.js';

export interface AuditCaller {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly binary?: string | undefined;
}

export interface AuditRecord {
  readonly method: string;
  readonly caller: AuditCaller;
  readonly decision: 'granted' | 'denied' | 'withdrawn';
  readonly selectors?: readonly Selector[] | undefined;
  readonly entryIds?: readonly string[] | undefined;
  readonly spiffeIds?: readonly string[] | undefined;
  readonly serials?: readonly string[] | undefined;
  readonly audience?: readonly string[] | undefined;
  readonly reason?: string | undefined;
  /** Delegated Identity API: the delegate's authorized SPIFFE ID and the workload it asked for. */
  readonly delegate?: string | undefined;
  readonly targetSelectors?: readonly Selector[] | undefined;
  readonly targetPid?: number | undefined;
}

const REDACTED = '[redacted]';

export class AuditLog {
  private readonly log: Logger;
  private readonly decisions: CounterHandle;

  constructor(
    log: Logger,
    private readonly visible: readonly string[],
    metrics: Metrics = NO_METRICS,
  ) {
    this.log = log.child({ [F.subsystem]: 'audit', audit: true });
    this.decisions = metrics.own.counter('audit_decisions', 'Workload API and SDS decisions recorded in the audit log, by RPC method and decision (granted, denied, withdrawn)', ['method', 'decision']);
  }

  redact(selectors: readonly Selector[]): string[] {
    return selectors.map((s) => {
      const colon = s.value.indexOf(':');
      const typeKey = colon > 0 ? `${s.type}:${s.value.slice(0, colon)}` : s.type;
      return this.shows(s.type, typeKey) ? `${s.type}:${s.value}` : `${typeKey}:${REDACTED}`;
    });
  }

  /** The binary path as the `unix:path` selector would show it. */
  redactBinary(binary: string): string {
    return this.shows('unix', 'unix:path') ? binary : REDACTED;
  }

  private shows(type: string, typeKey: string): boolean {
    return this.visible.some((v) => v === type || v === typeKey);
  }

  record(r: AuditRecord): void {
    this.decisions.inc(r.method, r.decision);
    const fields: Record<string, PlainValue> = {
      [F.method]: r.method,
      [F.decision]: r.decision,
      [F.pid]: r.caller.pid,
      [F.uid]: r.caller.uid,
      [F.gid]: r.caller.gid,
    };
    if (r.caller.binary) fields[F.binary] = this.redactBinary(r.caller.binary);
    if (r.selectors) fields[F.selectors] = this.redact(r.selectors);
    if (r.entryIds) fields[F.entryIds] = r.entryIds;
    if (r.spiffeIds) fields[F.spiffeIds] = r.spiffeIds;
    if (r.serials) fields[F.serials] = r.serials;
    if (r.audience) fields[F.audience] = r.audience;
    if (r.reason) fields[F.reason] = r.reason;
    if (r.delegate) fields[F.delegate] = r.delegate;
    if (r.targetSelectors) fields[F.targetSelectors] = this.redact(r.targetSelectors);
    if (r.targetPid) fields[F.targetPid] = r.targetPid;
    const level = r.decision === 'granted' ? 'info' : 'warn';
    // On every connection's path: the plain line is pino's line without pino's cost (plain-line.ts).
    if (this.log.plain) this.log.plain(level, fields, 'Workload API decision');
    else this.log[level](fields, 'Workload API decision');
  }
}
