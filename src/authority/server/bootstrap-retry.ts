/**
 * retry_bootstrap as spire-agent v1.13.3 runs it (pkg/agent/agent.go over pkg/common/backoff):
 * node attestation is retried with exponential backoff from 5 s (x1.5, ±10 %, each wait at most
 * 24 × 5 s = 2 min) until the next wait would pass 1 minute since the first attempt, or 24 hours
 * when rebootstrapping is enabled; a PermissionDenied (banned, refused) is final at once, and so
 * are errors that only a config change can fix.
 *
 * Logging differs on purpose: spire-agent warns at every retry (over 24 hours, ~700 identical
 * lines). Here a line is written when the state changes: the first failure, a failure different
 * from the one before (warn), and success after failures (info). Repeats of the same failure go
 * to debug, with their attempt number.
 */
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../telemetry/logger.js';

const INITIAL_MS = 5_000;
const MULTIPLIER = 1.5;
const JITTER = 0.1;
const MAX_INTERVAL_MS = 24 * INITIAL_MS;
export const BOOTSTRAP_MAX_ELAPSED_MS = 60_000;
export const REBOOTSTRAP_MAX_ELAPSED_MS = 24 * 3600_000;

/** Codes of errors a retry cannot fix. */
const FINAL = new Set(['config_invalid', 'node_attestor_config', 'not_reattestable', 'keymanager_count', 'node_attestor_count', 'unknown_plugin', 'storage_corrupt', 'keymanager_corrupt', 'keymanager_tpm_foreign']);

/**
 * spire-agent asks status.Code(err), which finds a gRPC status however deeply the error wraps it;
 * here the server's status is the `cause` of the session's error, so the chain is walked the same way.
 */
export function isFinalBootstrapError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && FINAL.has(code)) return true;
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === grpc.status.PERMISSION_DENIED) return true;
  }
  return false;
}

export interface RetryDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly maxElapsedMs: number;
  readonly signal: AbortSignal;
  readonly random?: () => number;
  /** The warning of a failed attempt; spire-agent's for node attestation unless set. */
  readonly message?: string;
  /** Said once when an attempt succeeds after failures. */
  readonly successMessage?: string;
  /** Errors not worth retrying; isFinalBootstrapError unless set. */
  readonly isFinal?: (err: unknown) => boolean;
}

/**
 * What makes two failures "the same" for logging: the code and the message with quoted values
 * and numbers blanked, so a fresh nonce, port or duration in each attempt's message is no new state.
 */
export function failureKind(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  return `${String(code)}|${message.replace(/"[^"]*"|'[^']*'/g, '""').replace(/\d+/g, '#')}`;
}

export async function retryBootstrap<T>(fn: () => Promise<T>, d: RetryDeps): Promise<T> {
  const start = d.clock.now();
  let interval = INITIAL_MS;
  const random = d.random ?? Math.random;
  let attempt = 0;
  let lastKind: string | undefined;
  for (;;) {
    attempt++;
    try {
      const result = await fn();
      if (lastKind !== undefined) d.log.info({ attempt }, d.successMessage ?? 'Node attestation succeeded after failed attempts');
      return result;
    } catch (err) {
      d.signal.throwIfAborted();
      const wait = Math.round(interval * (1 - JITTER + 2 * JITTER * random()));
      if ((d.isFinal ?? isFinalBootstrapError)(err) || d.clock.now() + wait - start > d.maxElapsedMs) throw err;
      const kind = failureKind(err);
      const fields = { error: (err as Error).message, retry_interval: `${wait}ms`, attempt };
      // spire-agent's message, so operators' searches still find it; repeats say they are repeats.
      const message = d.message ?? 'Failed to retrieve attestation result';
      if (kind !== lastKind) d.log.warn(fields, message);
      else d.log.debug({ ...fields, repeated: true }, message);
      lastKind = kind;
      // The abort listener goes with its wait: over 24 hours of retries they would pile up on the signal.
      await new Promise<void>((resolve) => {
        const onAbort = () => (cancel(), resolve());
        const cancel = d.clock.setTimer(wait, () => {
          d.signal.removeEventListener('abort', onAbort);
          resolve();
        });
        d.signal.addEventListener('abort', onAbort, { once: true });
      });
      d.signal.throwIfAborted();
      interval = Math.min(MAX_INTERVAL_MS, interval * MULTIPLIER);
    }
  }
}
