/**
 * One kubelet fetch shared by every attestation that needs it (single flight), reused
 * for up to poll_retry_interval after it started, and never more than one fetch per
 * poll_retry_interval however many callers wait: a node starting fifty pods at once
 * must not turn into fifty /pods requests a second against its kubelet.
 *
 * Callers say which version they have already looked at (`next(afterVersion)`): a
 * caller whose container was missing from version N waits for N+1 instead of being
 * handed N again.
 */
import type { Clock } from '../../../clock.js';
import { SpiffeAgentError, type ErrorCodes } from '../../../errors.js';
import { parsePodList, type PodList } from './pod-list.js';

declare module '../../../errors.js' {
  interface ErrorCodes {
    podCache: 'pod_cache_closed';
  }
}

/** Codes: `pod_cache_closed`. */
export class PodCacheError extends SpiffeAgentError<ErrorCodes['podCache']> {}

export type PodListSource = (signal: AbortSignal) => Promise<Buffer | string>;

interface Waiter {
  resolve(list: PodList): void;
  reject(err: unknown): void;
}

export class PodListCache {
  private cached: PodList | undefined;
  private cachedFetchStart = 0;
  private lastFetchStart: number | undefined;
  private version = 0;
  private inFlight: AbortController | undefined;
  private cancelTimer: (() => void) | undefined;
  private readonly waiters = new Set<Waiter>();
  private closed = false;
  /** Kubelet requests started, for metrics and tests. */
  fetches = 0;

  constructor(
    private readonly source: PodListSource,
    private readonly clock: Clock,
    private readonly pollRetryIntervalMs: number,
  ) {}

  /** A pod list newer than `afterVersion` (0 = any). */
  next(afterVersion: number, signal: AbortSignal): Promise<PodList> {
    if (this.closed) return Promise.reject(closedError());
    if (signal.aborted) return Promise.reject(signal.reason);
    const c = this.cached;
    if (c && c.version > afterVersion && this.clock.now() < this.cachedFetchStart + this.pollRetryIntervalMs) {
      return Promise.resolve(c);
    }
    return new Promise<PodList>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(waiter);
        if (this.waiters.size === 0) this.stopTimer();
        reject(signal.reason);
      };
      const waiter: Waiter = {
        resolve: (l) => (signal.removeEventListener('abort', onAbort), resolve(l)),
        reject: (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
      this.schedule();
    });
  }

  close(): void {
    this.closed = true;
    this.stopTimer();
    this.inFlight?.abort(closedError());
    this.inFlight = undefined;
    const err = closedError();
    for (const w of this.waiters) w.reject(err);
    this.waiters.clear();
  }

  private schedule(): void {
    if (this.closed || this.inFlight || this.cancelTimer || this.waiters.size === 0) return;
    const delay = this.lastFetchStart === undefined ? 0 : this.lastFetchStart + this.pollRetryIntervalMs - this.clock.now();
    if (delay <= 0) {
      this.start();
      return;
    }
    this.cancelTimer = this.clock.setTimer(delay, () => {
      this.cancelTimer = undefined;
      if (this.waiters.size > 0) this.start();
    });
  }

  private start(): void {
    const started = this.clock.now();
    this.lastFetchStart = started;
    const ac = new AbortController();
    this.inFlight = ac;
    this.fetches++;
    const version = this.version + 1;
    const finish = (result: { list: PodList } | { err: unknown }): void => {
      if (this.inFlight !== ac) return; // closed meanwhile
      this.inFlight = undefined;
      if ('list' in result) {
        this.version = version;
        this.cached = result.list;
        this.cachedFetchStart = started;
      }
      const waiting = [...this.waiters];
      this.waiters.clear();
      for (const w of waiting) {
        if ('list' in result) w.resolve(result.list);
        else w.reject(result.err);
      }
    };
    this.source(ac.signal).then(
      (body) => {
        try {
          finish({ list: parsePodList(body, version) });
        } catch (err) {
          finish({ err });
        }
      },
      (err: unknown) => finish({ err }),
    );
  }

  private stopTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }
}

function closedError(): PodCacheError {
  return new PodCacheError('pod_cache_closed', 'k8s: the attestor is closed (the agent is shutting down)');
}
