import type { Clock } from '../../src/clock.js';

/**
 * A Clock that moves only when a test says so; due timers fire in time order. `advance`
 * moves the wall and the (monotonic) timers together; `jump` moves only the wall clock.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return () => this.timers.delete(id);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Steps the wall clock by `ms` (either direction) without any time passing for timers,
   * as when a suspended host resumes or the clock is set: timers stay due when they were.
   */
  jump(ms: number): void {
    this.t += ms;
    for (const timer of this.timers.values()) timer.at += ms;
  }

  /** Moves time forward, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
