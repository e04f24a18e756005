/**
 * Runs every configured workload attestor on a pid concurrently and merges what
 * they find. One failing attestor is logged and its selectors are absent; only if
 * all fail does attestation fail: as a missing privilege of the agent, or refused (neither worth
 * retrying) when an attestor said so, or as a possibly transient failure otherwise. Concurrent attestations are bounded so a busy
 * node cannot make the agent open thousands of /proc files at once.
 */
import type { Selector } from '../../domain/types.js';
import { SpiffeAgentError, type ErrorCodes } from '../../errors.js';
import { ProcError } from '../../proc/errors.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { NO_METRICS, statusName, type CallHandle, type Metrics, type SampleHandle } from '../../telemetry/metrics/index.js';
import { WorkloadRefusedError, type WorkloadAttestor } from './types.js';

declare module '../../errors.js' {
  interface ErrorCodes {
    attestation: 'attestation_failed' | 'workload_gone' | 'workload_refused';
  }
}

export class AttestationError extends SpiffeAgentError<ErrorCodes['attestation']> {}

export interface AttestationResult {
  readonly selectors: readonly Selector[];
  readonly failed: readonly string[];
}

export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A released slot is handed straight to the next waiter (active is not decremented),
    // so a newcomer arriving before the waiter resumes cannot take it as well.
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export class WorkloadAttestation {
  private readonly gate: Semaphore;
  private readonly inflight = new Map<number, Promise<AttestationResult>>();

  private readonly m: { attestation: CallHandle; attestor: CallHandle; selectors: SampleHandle } | undefined;

  constructor(
    private readonly attestors: readonly WorkloadAttestor[],
    private readonly log: Logger,
    opts: { concurrency?: number; metrics?: Metrics } = {},
  ) {
    this.gate = new Semaphore(opts.concurrency ?? 64);
    const metrics = opts.metrics ?? NO_METRICS;
    // spire-agent's keys (pkg/common/telemetry/agent/workloadapi/workload.go).
    this.m = metrics.enabled
      ? {
          attestation: metrics.call(['workload_api', 'workload_attestation']),
          attestor: metrics.call(['workload_api', 'workload_attestor'], ['attestor']),
          selectors: metrics.sample(['workload_api', 'discovered_selectors']),
        }
      : undefined;
  }

  /** Whether any attestor reads the signal attest() takes (see WorkloadAttestor.ignoresSignal). */
  get needsSignal(): boolean {
    return this.attestors.some((a) => !a.ignoresSignal);
  }

  get names(): string[] {
    return this.attestors.map((a) => a.name);
  }

  /**
   * Concurrent attestations of one pid share a single run: many streams of one process
   * re-attest in the same tick, and they would all get the same answer anyway. Only
   * in-flight work is shared; a later call always attests afresh.
   */
  attest(pid: number, signal: AbortSignal): Promise<AttestationResult> {
    const pending = this.inflight.get(pid);
    if (pending) return pending;
    const p = this.attestNow(pid, signal).finally(() => this.inflight.delete(pid));
    this.inflight.set(pid, p);
    return p;
  }

  private async attestNow(pid: number, signal: AbortSignal): Promise<AttestationResult> {
    const m = this.m;
    const t0 = m ? performance.now() : 0;
    const run = this.gate.run(async () => {
      const results = await Promise.allSettled(this.attestors.map((a) => (m ? this.timed(a, pid, signal, m.attestor) : a.attest(pid, signal))));
      const selectors: Selector[] = [];
      const failed: string[] = [];
      const seen = new Set<string>();
      results.forEach((r, i) => {
        const name = this.attestors[i]!.name;
        if (r.status === 'rejected') {
          failed.push(name);
          this.log.warn({ [F.attestor]: name, [F.pid]: pid, [F.error]: errMessage(r.reason) }, 'Workload attestor failed');
          return;
        }
        for (const value of r.value) {
          const key = `${name}:${value}`;
          if (seen.has(key)) continue;
          seen.add(key);
          selectors.push({ type: name, value });
        }
      });
      if (this.attestors.length > 0 && failed.length === this.attestors.length) {
        // Every attestor found no such process: for a pid named by a delegate that is
        // "not found", not an agent fault to retry (a caller of our own that vanished is
        // told Unauthenticated by the call attestor before this is seen).
        if (results.every((r) => r.status === 'rejected' && r.reason instanceof ProcError && r.reason.code === 'process_gone')) {
          throw new AttestationError('workload_gone', `workload attestation failed: process ${pid} does not exist`);
        }
        // The agent may not read what an attestor needs (no CAP_SYS_PTRACE for another uid's
        // /proc/<pid>/exe, say): the operator has to grant it, so the caller is told which.
        const denied = results.findIndex((r) => r.status === 'rejected' && r.reason instanceof ProcError && r.reason.code === 'proc_denied');
        if (denied >= 0) {
          const reason = (results[denied] as PromiseRejectedResult).reason as ProcError;
          throw new ProcError('proc_denied', `workload attestation failed for pid ${pid}: attestor ${this.attestors[denied]!.name}: ${reason.message}`, { cause: reason });
        }
        const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof WorkloadRefusedError);
        if (refused) {
          const why = errMessage(refused.reason);
          throw new AttestationError('workload_refused', `workload attestation refused for pid ${pid}: ${why}`, { cause: refused.reason });
        }
        throw new AttestationError('attestation_failed', `workload attestation failed for pid ${pid}: every attestor failed (${failed.join(', ')})`);
      }
      return { selectors, failed };
    });
    if (!m) return run;
    return run.then(
      (r) => {
        m.attestation.done('OK', performance.now() - t0);
        m.selectors.observe(r.selectors.length);
        return r;
      },
      (err: unknown) => {
        m.attestation.done(statusName(err), performance.now() - t0);
        throw err;
      },
    );
  }

  private timed(a: WorkloadAttestor, pid: number, signal: AbortSignal, h: CallHandle): Promise<readonly string[]> {
    const t0 = performance.now();
    return a.attest(pid, signal).then(
      (v) => {
        h.done('OK', performance.now() - t0, a.name);
        return v;
      },
      (err: unknown) => {
        h.done(statusName(err), performance.now() - t0, a.name);
        throw err;
      },
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.attestors.map((a) => a.close?.()));
  }
}

export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
