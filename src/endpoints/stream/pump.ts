/**
 * The loop every server stream of the agent runs (Workload API, SDS, admin): `step` now and after
 * every change the subscription reports, one at a time, bursts coalesced into one run; the stream
 * ends when the client goes away or `step` fails (with the mapped status). driver.ts adds
 * re-attestation for the public socket on top; the admin streams use this directly.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Selector } from '../../domain/types.js';
import type { CacheManager, Subscription } from '../../cache/manager.js';
import { toServiceError } from '../status.js';

/** What a stream needs from the cache: a subscription to the selectors' identities. */
export type StreamCache = Pick<CacheManager, 'subscribe'>;

export type StreamCall = grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

export interface StreamLoop {
  readonly sub: Subscription;
  /** Aborted when the loop stops; meant for the run under way (see runStreamLoop). */
  readonly signal: AbortSignal;
  /** True once the loop has stopped. */
  readonly ended: boolean;
  /** Runs `step` again (coalesced with runs already waiting). */
  run(): void;
  /** Stops the loop: with an error, the stream ends with its status. */
  finish(err?: unknown): void;
}

export interface StreamLoopOptions {
  readonly cache: StreamCache;
  readonly selectors: readonly Selector[];
  /** One update of the stream. */
  step(loop: StreamLoop): Promise<void>;
  /** Called on every change the subscription reports, before the run it causes. */
  onChange?(): void;
  /** Sees a failed step before the stream ends with it (logging). */
  onStepError?(err: unknown): void;
  /** Called once when the loop stops, for whatever reason. */
  onFinish?(): void;
}

/**
 * The abort reason of every ended loop: `abort()` without one builds a DOMException (with a stack
 * trace) per stream, ~20 µs of every connection's CPU. Nothing reads the reason.
 */
const STREAM_ENDED = new Error('stream ended');

/**
 * One per open stream, for its whole life, so it is a class (methods on the prototype) rather than
 * closures, and holds no AbortController between runs: an idle stream is a few small objects.
 * `run` is coalesced: a call during a run asks for exactly one more run, so a burst of changes
 * costs one recomputation, not one per change.
 */
class Loop implements StreamLoop {
  readonly sub: Subscription;
  /** Made when a run reads `signal` and dropped after it (≈0.7 KiB with its signal); the one aborted at `finish` is kept. */
  private abort: AbortController | undefined;
  private done = false;
  private running = false;
  private again = false;

  constructor(
    private readonly call: StreamCall,
    private readonly o: StreamLoopOptions,
  ) {
    // Selectors that match nothing still get notified of every authority change (bundle streams use that).
    this.sub = o.cache.subscribe(o.selectors, () => {
      if (this.done) return;
      this.o.onChange?.();
      this.run();
    });
    // One listener for the three ends, not three once() wrappers (≈0.2 KiB each): finish() runs once anyway.
    const end = (): void => this.finish();
    call.on('cancelled', end);
    call.on('close', end);
    call.on('error', end);
  }

  /**
   * Made only when a run reads it (a re-attestation does; the first answer of a stream does not),
   * so most connections make no AbortController at all: making and aborting one per stream was
   * ~2 % of the agent's CPU per connection (issue 19). Read after the loop stopped, it is aborted.
   */
  get signal(): AbortSignal {
    if (!this.abort) {
      this.abort = new AbortController();
      if (this.done) this.abort.abort(STREAM_ENDED);
    }
    return this.abort.signal;
  }

  get ended(): boolean {
    return this.done;
  }

  run(): void {
    void this.runCoalesced();
  }

  finish(err?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.o.onFinish?.();
    // Only a signal someone holds needs aborting; one read later is made aborted (see signal).
    this.abort?.abort(STREAM_ENDED);
    this.sub.close();
    if (err) this.call.emit('error', toServiceError(err));
  }

  private async runCoalesced(): Promise<void> {
    if (this.done) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        try {
          await this.o.step(this);
        } finally {
          // Each run gets its own signal, if it reads one; a stopped loop keeps its aborted one.
          if (!this.done) this.abort = undefined;
        }
      } while (this.again && !this.done);
    } catch (err) {
      this.o.onStepError?.(err);
      this.finish(err);
    } finally {
      this.running = false;
    }
  }
}

export function runStreamLoop(call: StreamCall, o: StreamLoopOptions): StreamLoop {
  return new Loop(call, o);
}

/** An admin stream: `step` now and after every cache change; an error from `step` ends the stream with its status. */
export function pumpStream(
  call: grpc.ServerWritableStream<unknown, unknown>,
  cache: StreamCache,
  selectors: readonly Selector[],
  step: (signal: AbortSignal, sub: Subscription) => Promise<void>,
): void {
  const loop = runStreamLoop(call, { cache, selectors, step: (l) => step(l.signal, l.sub) });
  loop.run();
}
