/**
 * retry_bootstrap as spire-agent v1.13.3 runs it (pkg/agent/agent.go): node attestation is retried
 * with exponential backoff from 5 s (x1.5, ±10 %) for up to 1 minute, or 24 hours when
 * rebootstrapping is enabled; a PermissionDenied (banned, refused) is final at once, and so are
 * errors that only a config change can fix.
 */
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../telemetry/logger.js';

const INITIAL_MS = 5_000;
const MULTIPLIER = 1.5;
const JITTER = 0.1;
const MAX_INTERVAL_MS = 60_000;
export const BOOTSTRAP_MAX_ELAPSED_MS = 60_000;
export const REBOOTSTRAP_MAX_ELAPSED_MS = 24 * 3600_000;

/** Codes of errors a retry cannot fix. */
const FINAL = new Set(['config_invalid', 'node_attestor_config', 'not_reattestable', 'keymanager_count', 'node_attestor_count', 'unknown_plugin', 'storage_corrupt', 'keymanager_corrupt', 'keymanager_tpm_foreign']);

export function isFinalBootstrapError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === grpc.status.PERMISSION_DENIED || (typeof code === 'string' && FINAL.has(code));
}

export interface RetryDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly maxElapsedMs: number;
  readonly signal: AbortSignal;
  readonly random?: () => number;
}

export async function retryBootstrap<T>(fn: () => Promise<T>, d: RetryDeps): Promise<T> {
  const start = d.clock.now();
  let interval = INITIAL_MS;
  const random = d.random ?? Math.random;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      d.signal.throwIfAborted();
      const wait = Math.round(interval * (1 - JITTER + 2 * JITTER * random()));
      if (isFinalBootstrapError(err) || d.clock.now() + wait - start > d.maxElapsedMs) throw err;
      d.log.warn({ error: (err as Error).message, retry_interval: `${wait}ms` }, 'Failed to retrieve attestation result');
      await new Promise<void>((resolve) => {
        const cancel = d.clock.setTimer(wait, resolve);
        d.signal.addEventListener('abort', () => (cancel(), resolve()), { once: true });
      });
      d.signal.throwIfAborted();
      interval = Math.min(MAX_INTERVAL_MS, interval * MULTIPLIER);
    }
  }
}
