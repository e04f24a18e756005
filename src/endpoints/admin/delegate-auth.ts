/**
 * Rules of the Delegated Identity API: who may call it (a caller whose registration
 * entries include a SPIFFE ID listed in authorized_delegates) and which workload a
 * request names (exactly one of selectors or pid).
 */
import * as grpc from '@grpc/grpc-js';
import type { RegistrationEntry, Selector } from '../../authority/types.js';
import type { WorkloadAttestation } from '../../attestation/workload/attest.js';
import { auditCaller, type Attested, type CallAttestor, type AttestableCall } from '../call-attestor.js';
import type { AuditLog } from '../../telemetry/audit.js';
import { StatusError } from '../status.js';

export type Decision = { readonly ok: true; readonly delegate: string } | { readonly ok: false; readonly reason: string; readonly message: string };

/** Pure: the caller's matched entries against the configured delegates. */
export function decideDelegate(entries: readonly RegistrationEntry[], authorized: readonly string[]): Decision {
  if (entries.length === 0) return { ok: false, reason: 'no registration entry matches the caller', message: 'no identity issued' };
  const allowed = new Set(authorized);
  const hit = entries.find((e) => allowed.has(e.spiffeId));
  if (hit) return { ok: true, delegate: hit.spiffeId };
  const ids = [...new Set(entries.map((e) => e.spiffeId))].join(', ');
  return { ok: false, reason: `none of the caller's SPIFFE IDs (${ids}) is in authorized_delegates`, message: 'caller not configured as an authorized delegate' };
}

export interface TargetRequest {
  readonly selectors?: readonly { type?: string; value?: string }[] | null | undefined;
  readonly pid?: number | null | undefined;
}

export type Target = { readonly kind: 'selectors'; readonly selectors: readonly Selector[] } | { readonly kind: 'pid'; readonly pid: number };

/** Pure: exactly one of non-empty selectors or a non-zero pid. */
export function parseTarget(req: TargetRequest): Target {
  const selectors = req.selectors ?? [];
  const pid = req.pid ?? 0;
  if (selectors.length > 0 && pid !== 0) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'cannot specify both selectors and pid');
  if (selectors.length === 0 && pid === 0) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'must specify either selectors or non-zero pid');
  if (pid !== 0) {
    if (!Number.isInteger(pid) || pid < 0) throw new StatusError(grpc.status.INVALID_ARGUMENT, `invalid pid ${pid}`);
    return { kind: 'pid', pid };
  }
  const out: Selector[] = [];
  for (const s of selectors) {
    if (!s.type || !s.value) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'could not parse provided selectors: selector type and value must be non-empty');
    out.push({ type: s.type, value: s.value });
  }
  return { kind: 'selectors', selectors: out };
}

export interface DelegateAuthDeps {
  readonly attestor: CallAttestor;
  readonly attestation: Pick<WorkloadAttestation, 'attest'>;
  readonly match: (selectors: readonly Selector[]) => RegistrationEntry[];
  readonly authorized: readonly string[];
  readonly audit: AuditLog;
}

export interface Delegate {
  readonly attested: Attested;
  readonly id: string;
}

export class DelegateAuth {
  constructor(private readonly d: DelegateAuthDeps) {}

  /** Attests the caller and requires it to be an authorized delegate; denials are audited. */
  async authorize(call: AttestableCall, method: string): Promise<Delegate> {
    return this.check(await this.d.attestor.attest(call, method), method, 'denied');
  }

  /** Attests an open stream's caller again and re-applies the rule. */
  async recheck(delegate: Delegate, method: string, signal: AbortSignal): Promise<Delegate> {
    let a: Attested;
    try {
      a = await this.d.attestor.attestCaller(delegate.attested.caller, signal);
    } catch (err) {
      this.d.audit.record({ method, caller: auditCaller(delegate.attested), decision: 'withdrawn', reason: (err as Error).message });
      throw err;
    }
    return this.check(a, method, 'withdrawn');
  }

  /** The target's selectors: verbatim, or from the agent's own attestors for a pid. */
  async selectorsOf(target: Target, signal: AbortSignal): Promise<readonly Selector[]> {
    if (target.kind === 'selectors') return target.selectors;
    const r = await this.d.attestation.attest(target.pid, signal);
    return r.selectors;
  }

  private check(a: Attested, method: string, onDeny: 'denied' | 'withdrawn'): Delegate {
    const entries = this.d.match(a.selectors);
    const decision = decideDelegate(entries, this.d.authorized);
    if (!decision.ok) {
      this.d.audit.record({ method, caller: auditCaller(a), decision: onDeny, selectors: a.selectors, entryIds: entries.map((e) => e.id), reason: decision.reason });
      throw new StatusError(grpc.status.PERMISSION_DENIED, decision.message);
    }
    return { attested: a, id: decision.delegate };
  }
}
