/**
 * Who is calling, for every RPC on the public socket: the caller as the kernel saw it
 * at connect time, attested, then re-checked to be the same process before anything
 * is returned. Shared by the Workload API and SDS, which attest callers the same way.
 */
import * as grpc from '@grpc/grpc-js';
import type { Selector } from '../authority/types.js';
import type { AttestationResult, WorkloadAttestation } from '../attestation/workload/attest.js';
import type { Caller } from '../proc/peer-tracker.js';
import type { ProcReader } from '../proc/proc-reader.js';
import type { AuditLog } from '../telemetry/audit.js';
import { StatusError } from './status.js';

export interface Attested {
  readonly caller: Caller;
  readonly selectors: readonly Selector[];
  readonly binary: string | undefined;
}

export interface CallAttestorDeps {
  /** Only `attest` (and `needsSignal` when there) is used; tests pass a fake with just that. */
  readonly attestation: Pick<WorkloadAttestation, 'attest'> & Partial<Pick<WorkloadAttestation, 'needsSignal'>>;
  readonly callerOf: (call: { getPeer(): string }) => Caller | undefined;
  readonly proc: Pick<ProcReader, 'exePath'>;
  readonly audit: AuditLog;
}

/** The caller as an audit record names it: what the kernel saw, and the binary. */
export function auditCaller(a: Attested): { pid: number; uid: number; gid: number; binary: string | undefined } {
  return { pid: a.caller.pid, uid: a.caller.uid, gid: a.caller.gid, binary: a.binary };
}

/** The parts of a grpc-js server call attestation needs (unary, server-streaming and bidi calls all fit). */
export type AttestableCall = { getPeer(): string };

/** One abort reason for every cancelled call: `abort()` without one builds a DOMException per call. */
const CALL_CANCELLED = new Error('call cancelled by the client');

export class CallAttestor {
  /** Read once: the attestors are fixed for the agent's life. */
  private readonly cancellable: boolean;
  /** Given to attestors that never read it, instead of a controller's signal per call. */
  private readonly neverAborted = new AbortController().signal;

  constructor(private readonly d: CallAttestorDeps) {
    this.cancellable = d.attestation.needsSignal !== false;
  }

  /** Attests the caller of `call`; aborted when the client cancels (if an attestor can be). Denials are audited. */
  async attest(call: AttestableCall, method: string): Promise<Attested> {
    const caller = this.d.callerOf(call);
    if (!caller) throw new StatusError(grpc.status.UNAUTHENTICATED, 'caller connection is not tracked');
    // A controller (and a listener on the call) only when an attestor can be cancelled.
    const controller = this.cancellable ? new AbortController() : undefined;
    const onCancel = (): void => controller?.abort(CALL_CANCELLED);
    const events = call as unknown as NodeJS.EventEmitter;
    if (controller) events.once('cancelled', onCancel);
    try {
      return await this.attestCaller(caller, controller?.signal ?? this.neverAborted);
    } catch (err) {
      this.denied(method, caller, err);
      throw err;
    } finally {
      if (controller) events.off('cancelled', onCancel);
    }
  }

  private denied(method: string, caller: Caller, err: unknown): void {
    this.d.audit.record({ method, caller: { pid: caller.pid, uid: caller.uid, gid: caller.gid }, decision: 'denied', reason: (err as Error).message });
  }

  /** Attests an already-known caller again (open streams re-attest through this). */
  async attestCaller(caller: Caller, signal: AbortSignal): Promise<Attested> {
    let result: AttestationResult;
    let binary: string | undefined;
    try {
      [result, binary] = await Promise.all([
        this.d.attestation.attest(caller.pid, signal),
        this.d.proc.exePath(caller.pid).catch(() => undefined),
      ]);
    } catch (err) {
      // A caller that has exited makes every attestor fail. That is Unauthenticated (the
      // connection no longer belongs to a live process), not an agent fault worth retrying.
      await caller.checkAlive();
      throw err;
    }
    // The answer is only good if the process that connected is still the one we attested.
    await caller.checkAlive();
    return { caller, selectors: result.selectors, binary };
  }
}
