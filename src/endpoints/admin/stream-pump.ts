/**
 * Runs one admin stream: `step` now and after every cache change, one at a time,
 * coalescing bursts into one run; an error from `step` ends the stream with its status.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Selector } from '../../authority/types.js';
import type { CacheManager, Subscription } from '../../cache/manager.js';
import { coalesced } from '../coalesce.js';
import { toServiceError } from '../status.js';

export function pumpStream(
  call: grpc.ServerWritableStream<unknown, unknown>,
  cache: CacheManager,
  selectors: readonly Selector[],
  step: (signal: AbortSignal, sub: Subscription) => Promise<void>,
): void {
  const abort = new AbortController();
  let done = false;
  const finish = (err?: unknown): void => {
    if (done) return;
    done = true;
    abort.abort();
    sub.close();
    if (err) call.emit('error', toServiceError(err));
  };
  const run = coalesced(() => step(abort.signal, sub), () => done, finish);
  // Selectors that match nothing still get notified of every authority change (bundle streams use that).
  const sub = cache.subscribe(selectors, () => {
    if (!done) void run();
  });
  call.once('cancelled', () => finish());
  call.once('close', () => finish());
  call.once('error', () => finish());
  void run();
}
