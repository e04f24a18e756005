/** Time seam: rotation and expiry decisions take `now` from a Clock so tests can drive them. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Like setTimeout, but the timer never keeps the process alive. Returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    // Node caps timers at 2^31-1 ms; longer waits are re-armed in steps.
    const max = 2_147_483_647;
    let handle: NodeJS.Timeout;
    const arm = (remaining: number): void => {
      handle = setTimeout(() => (remaining > max ? arm(remaining - max) : fn()), Math.min(remaining, max));
      handle.unref();
    };
    arm(Math.max(0, ms));
    return () => clearTimeout(handle);
  },
};

/** Longest a wall-clock timer sleeps before it looks at the wall clock again. */
export const WALL_CHECK_MS = 5_000;
/** Disagreement between the wall clock and the time slept that counts as a jump. */
export const WALL_JUMP_TOLERANCE_MS = 1_000;

/**
 * Calls `fn` once the wall clock reaches `at`, or as soon as the wall clock is seen to
 * jump (a suspended host resuming, an operator or NTP stepping the clock), whichever is
 * first. Plain timers follow the monotonic clock: a rotation due "in 12 hours" would
 * fire 12 hours after it was set even if the wall clock had moved a day meanwhile. So
 * this sleeps at most WALL_CHECK_MS at a time and compares the wall time that passed
 * with the time it slept. On a jump in either direction `fn` runs early; it must
 * therefore decide from `clock.now()` what is due, and re-arm. A late wake-up of a busy
 * event loop can look like a jump; that costs one early, idempotent re-evaluation.
 */
export function setWallTimer(clock: Clock, at: number, fn: () => void, maxSleepMs = WALL_CHECK_MS): () => void {
  let cancel: () => void = () => {};
  let cancelled = false;
  const arm = (): void => {
    const start = clock.now();
    const sleep = Math.max(0, Math.min(at - start, maxSleepMs));
    cancel = clock.setTimer(sleep, () => {
      if (cancelled) return;
      const now = clock.now();
      const jumped = Math.abs(now - start - sleep) > WALL_JUMP_TOLERANCE_MS;
      if (now >= at || jumped) fn();
      else arm();
    });
  };
  arm();
  return () => {
    cancelled = true;
    cancel();
  };
}
