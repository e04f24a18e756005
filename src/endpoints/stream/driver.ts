/**
 * Drives one stream on the public socket (Workload API, SDS) on the loop of ./pump.ts: an update
 * now and after each cache change, one at a time, bursts coalesced into one recomputation.
 * Beyond spire-agent, which attests a stream only when it opens, the caller is attested again
 * before every update it would receive and on a fixed interval: a process that exec'd another binary or was relabelled loses the
 * identities it no longer matches at once, and a stream whose process is gone ends.
 */
import * as grpc from '@grpc/grpc-js';
import type { Subscription } from '../../cache/manager.js';
import type { Clock } from '../../clock.js';
import type { Selector } from '../../domain/types.js';
import { PeerError } from '../../proc/errors.js';
import type { Caller } from '../../proc/peer-tracker.js';
import type { Attested } from '../call-attestor.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { StatusError } from '../status.js';
import { runStreamLoop, type StreamCache, type StreamCall } from './pump.js';

export type { Attested } from '../call-attestor.js';

/** Lets a stream that also reads from its client (SDS) wake the driver or end it. */
export interface StreamControl {
  /** Runs `update` again (no re-attestation), e.g. because the client sent a request. */
  kick(): void;
  /** Stops driving: with an error, the stream ends with its status; without, the caller ends it. */
  end(err?: unknown): void;
}

export interface StreamDriverDeps {
  readonly cache: StreamCache;
  readonly clock: Clock;
  readonly log: Logger;
  readonly reattestIntervalMs: number;
  /** Attests the same caller again (attestors + liveness check). */
  readonly reattest: (caller: Caller, signal: AbortSignal) => Promise<Attested>;
  /** Records that the caller's process is gone or could not be attested again. */
  readonly onReattestFailure: (a: Attested, reason: string) => void;
  /** Receives the stream's controls before the first update runs. */
  readonly control?: (c: StreamControl) => void;
  /** Names the stream in logs (default "Workload API"). */
  readonly api?: string;
}

export function sameSelectors(a: readonly Selector[], b: readonly Selector[]): boolean {
  if (a.length !== b.length) return false;
  const key = (s: Selector): string => `${s.type}:${s.value}`;
  const set = new Set(a.map(key));
  return b.every((s) => set.has(key(s)));
}

export function driveStream(
  d: StreamDriverDeps,
  call: StreamCall,
  first: Attested,
  update: (sub: Subscription, current: Attested) => Promise<void>,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let current = first;
    let reattestDue = false;
    let cancelTimer: (() => void) | undefined;

    const reattest = async (sub: Subscription, signal: AbortSignal): Promise<void> => {
      let fresh: Attested;
      try {
        fresh = await d.reattest(current.caller, signal);
      } catch (err) {
        const gone = err instanceof PeerError;
        const reason = gone ? 'caller process exited or was replaced' : `re-attestation failed: ${(err as Error).message}`;
        d.onReattestFailure(current, reason);
        throw new StatusError(gone ? grpc.status.UNAUTHENTICATED : grpc.status.UNAVAILABLE, reason, { cause: err });
      }
      if (!sameSelectors(fresh.selectors, current.selectors)) {
        d.log.info({ [F.pid]: fresh.caller.pid, [F.binary]: fresh.binary }, 'Caller selectors changed on re-attestation');
        sub.setSelectors(fresh.selectors);
      }
      current = fresh;
    };

    const loop = runStreamLoop(call, {
      cache: d.cache,
      selectors: first.selectors,
      step: async ({ sub, signal }) => {
        if (reattestDue) {
          reattestDue = false;
          await reattest(sub, signal);
        }
        if (!signal.aborted) await update(sub, current);
      },
      onChange: () => {
        reattestDue = true;
      },
      onStepError: (err) => {
        if (!(err instanceof StatusError)) d.log.error({ [F.pid]: current.caller.pid, [F.error]: (err as Error).message }, `${d.api ?? 'Workload API'} stream failed`);
      },
      onFinish: () => {
        cancelTimer?.();
        resolve();
      },
    });

    const armInterval = (): void => {
      if (d.reattestIntervalMs <= 0 || loop.signal.aborted) return;
      // Ticks fall on multiples of the interval, so all streams of one process re-attest
      // together and share one attestation.
      const delay = d.reattestIntervalMs - (d.clock.now() % d.reattestIntervalMs);
      cancelTimer = d.clock.setTimer(delay, () => {
        reattestDue = true;
        loop.run();
        armInterval();
      });
    };

    d.control?.({ kick: () => loop.run(), end: (err?: unknown) => loop.finish(err) });
    armInterval();
    loop.run();
  });
}
