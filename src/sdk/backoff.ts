/**
 * Reconnect delays for watches, as go-spiffe's workloadapi backoff: start at 1 s,
 * double on each failure, cap at 30 s, back to the start after a good message.
 */
export interface BackoffOptions {
  readonly initialMs?: number;
  readonly maxMs?: number;
  readonly multiplier?: number;
}

export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #multiplier: number;
  #n = 0;

  constructor(opts: BackoffOptions = {}) {
    this.#initialMs = opts.initialMs ?? 1_000;
    this.#maxMs = opts.maxMs ?? 30_000;
    this.#multiplier = opts.multiplier ?? 2;
  }

  /** The delay before the next attempt; each call advances the sequence. */
  next(): number {
    const d = Math.min(this.#initialMs * this.#multiplier ** this.#n, this.#maxMs);
    if (d < this.#maxMs) this.#n++;
    return d;
  }

  reset(): void {
    this.#n = 0;
  }
}

/** Resolves after `ms`, or early (without error) when the signal aborts. The timer never holds the process open. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
