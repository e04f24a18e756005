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
import { runStreamLoop, type StreamCache, type StreamCall, type StreamLoop, type StreamLoopOptions } from './pump.js';

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

/**
 * The re-attestation clock of every open stream with one interval: one timer at the next multiple of
 * the interval, not one per stream (a timer with its closures is ≈0.5 KiB each open stream held).
 * The ticks are where each stream's own timer fell: multiples of the interval.
 */
class ReattestTicks {
  private readonly members = new Set<{ tick(): void }>();
  private cancel: (() => void) | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
  ) {}

  add(member: { tick(): void }): void {
    this.members.add(member);
    this.arm();
  }

  delete(member: { tick(): void }): void {
    this.members.delete(member);
    if (this.members.size === 0) {
      this.cancel?.();
      this.cancel = undefined;
    }
  }

  private arm(): void {
    if (this.cancel || this.members.size === 0) return;
    const delay = this.intervalMs - (this.clock.now() % this.intervalMs);
    this.cancel = this.clock.setTimer(delay, () => {
      this.cancel = undefined;
      for (const member of [...this.members]) member.tick();
      this.arm();
    });
  }
}

const ticksByClock = new WeakMap<Clock, Map<number, ReattestTicks>>();

function reattestTicks(clock: Clock, intervalMs: number): ReattestTicks {
  let byInterval = ticksByClock.get(clock);
  if (!byInterval) ticksByClock.set(clock, (byInterval = new Map()));
  let ticks = byInterval.get(intervalMs);
  if (!ticks) byInterval.set(intervalMs, (ticks = new ReattestTicks(clock, intervalMs)));
  return ticks;
}

export function driveStream(
  d: StreamDriverDeps,
  call: StreamCall,
  first: Attested,
  update: (sub: Subscription, current: Attested) => Promise<void>,
): Promise<void> {
  return new Promise<void>((resolve) => new StreamDriver(d, call, first, update, resolve));
}

/**
 * One per open stream, for its whole life: a class whose methods are the loop's hooks, rather than a
 * closure per hook (with their contexts, ≈1 KiB each stream held).
 */
class StreamDriver implements StreamLoopOptions {
  private current: Attested;
  private reattestDue = false;
  private readonly loop: StreamLoop;
  private readonly ticks: ReattestTicks | undefined;

  constructor(
    private readonly d: StreamDriverDeps,
    call: StreamCall,
    first: Attested,
    private readonly update: (sub: Subscription, current: Attested) => Promise<void>,
    private readonly resolve: () => void,
  ) {
    this.current = first;
    this.ticks = d.reattestIntervalMs > 0 ? reattestTicks(d.clock, d.reattestIntervalMs) : undefined;
    this.loop = runStreamLoop(call, this);
    const loop = this.loop;
    d.control?.({ kick: () => loop.run(), end: (err?: unknown) => loop.finish(err) });
    if (!loop.ended) this.ticks?.add(this);
    loop.run();
  }

  get cache(): StreamCache {
    return this.d.cache;
  }

  get selectors(): readonly Selector[] {
    return this.current.selectors;
  }

  async step(loop: StreamLoop): Promise<void> {
    if (this.reattestDue) {
      this.reattestDue = false;
      // The signal only here: reading it makes one (see StreamLoop.signal).
      await this.reattest(loop.sub, loop.signal);
    }
    if (!loop.ended) await this.update(loop.sub, this.current);
  }

  /** The re-attestation interval: ticks fall on multiples of it, so all streams of one process re-attest together and share one attestation. */
  tick(): void {
    this.reattestDue = true;
    this.loop.run();
  }

  onChange(): void {
    this.reattestDue = true;
  }

  onStepError(err: unknown): void {
    if (!(err instanceof StatusError)) this.d.log.error({ [F.pid]: this.current.caller.pid, [F.error]: (err as Error).message }, `${this.d.api ?? 'Workload API'} stream failed`);
  }

  onFinish(): void {
    this.ticks?.delete(this);
    this.resolve();
  }

  private async reattest(sub: Subscription, signal: AbortSignal): Promise<void> {
    const current = this.current;
    let fresh: Attested;
    try {
      fresh = await this.d.reattest(current.caller, signal);
    } catch (err) {
      const gone = err instanceof PeerError;
      const reason = gone ? 'caller process exited or was replaced' : `re-attestation failed: ${(err as Error).message}`;
      this.d.onReattestFailure(current, reason);
      throw new StatusError(gone ? grpc.status.UNAUTHENTICATED : grpc.status.UNAVAILABLE, reason, { cause: err });
    }
    if (!sameSelectors(fresh.selectors, current.selectors)) {
      this.d.log.info({ [F.pid]: fresh.caller.pid, [F.binary]: fresh.binary }, 'Caller selectors changed on re-attestation');
      sub.setSelectors(fresh.selectors);
    }
    this.current = fresh;
  }
}
