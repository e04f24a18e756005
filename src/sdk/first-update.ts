import { SpiffeAgentError } from '../errors.js';
import type { SdkLogger } from './logger.js';

/** A promise settled by the first update of a watch, or by its failure. */
export function waitForFirst<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Later settlements are no-ops; an unobserved rejection must not crash the process.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** How a source waits for an agent that is not answering yet (go-spiffe waits too). */
export interface FirstUpdateWait {
  /** The Workload API address, for the messages. */
  readonly address: string;
  readonly logger?: SdkLogger | undefined;
  /** Give up after this long without a first update (default: wait until the signal aborts). */
  readonly timeoutMs?: number | undefined;
}

/**
 * Tracks the failures before a source's first update: says once what it waits for (the logger
 * when given, else a process warning: a workload that starts before its agent should not look
 * hung without a word), and remembers the last failure for the timeout's message.
 */
export class WaitReport {
  #said = false;
  #last: Error | undefined;
  #settled = false;

  constructor(private readonly w: FirstUpdateWait) {}

  get last(): Error | undefined {
    return this.#last;
  }

  failed(err: Error): void {
    if (this.#settled) return;
    this.#last = err;
    if (this.#said) return;
    this.#said = true;
    const msg = `workloadapi: waiting for the SPIFFE Workload API at ${this.w.address} (${err.message}); retrying until it answers`;
    if (this.w.logger) this.w.logger.warn({ address: this.w.address, error: err.message }, msg);
    else process.emitWarning(msg, { code: 'SPIFFE_WORKLOAD_API_WAITING' });
  }

  settle(): void {
    this.#settled = true;
  }
}

/**
 * Waits for a source's first update. The watch ending first (closed, or a fatal status) or the
 * timeout fails the wait; on failure the source is closed before the error is rethrown.
 * The watch's retry timers do not hold the process, so this wait does: without it a top-level
 * `await X509Source.create()` before the agent is up ended the process with code 13 and no word.
 */
export async function awaitFirstUpdate<T>(
  first: ReturnType<typeof waitForFirst<T>>,
  watch: Promise<void>,
  closedError: () => Error,
  close: () => Promise<void>,
  wait?: { report: WaitReport; timeoutMs?: number | undefined; address: string },
): Promise<void> {
  watch.then(
    () => first.reject(closedError()),
    (err: unknown) => first.reject(err),
  );
  const hold = setInterval(() => undefined, 2 ** 30);
  const timeoutMs = wait?.timeoutMs;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          const last = wait?.report.last;
          first.reject(
            new SpiffeAgentError(
              'workloadapi_timeout',
              `workloadapi: no update from the SPIFFE Workload API at ${wait?.address} within ${timeoutMs} ms${last ? `: ${last.message}` : ''}`,
            ),
          );
        }, timeoutMs);
  try {
    await first.promise;
  } catch (err) {
    await close();
    throw err;
  } finally {
    clearInterval(hold);
    if (timer) clearTimeout(timer);
    wait?.report.settle();
  }
}
