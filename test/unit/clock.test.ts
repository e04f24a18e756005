/**
 * setWallTimer: a deadline on the wall clock that survives wall-clock jumps. Driven by
 * the fake clock, whose `jump` moves the wall clock without time passing for timers.
 */
import { describe, expect, it } from 'vitest';
import { setWallTimer } from '../../src/clock.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** How often the wall clock is looked at, pinned: "within seconds" of a jump (README) means this. */
const WALL_CHECK_MS = 5_000;

const HOUR = 3_600_000;

describe('setWallTimer', () => {
  it('fires at the wall-clock deadline, not before', () => {
    const clock = new FakeClock();
    const at = clock.now() + HOUR;
    let fired = 0;
    setWallTimer(clock, at, () => fired++);
    clock.advance(HOUR - 1);
    expect(fired).toBe(0);
    clock.advance(1);
    expect(fired).toBe(1);
    clock.advance(HOUR);
    expect(fired).toBe(1);
  });

  it('fires within seconds when the wall clock jumps past the deadline, where a plain timer waits the full delay', () => {
    const clock = new FakeClock();
    let wall = 0;
    let plain = 0;
    setWallTimer(clock, clock.now() + HOUR, () => wall++);
    clock.setTimer(HOUR, () => plain++);
    clock.jump(24 * HOUR);
    clock.advance(WALL_CHECK_MS);
    expect(wall).toBe(1);
    expect(plain).toBe(0);
  });

  it('fires early when the wall clock jumps back, so the caller can look again', () => {
    const clock = new FakeClock();
    let fired = 0;
    setWallTimer(clock, clock.now() + HOUR, () => fired++);
    clock.advance(10_000);
    clock.jump(-24 * HOUR);
    clock.advance(WALL_CHECK_MS);
    expect(fired).toBe(1);
  });

  it('does not fire on a small step of the clock', () => {
    const clock = new FakeClock();
    let fired = 0;
    setWallTimer(clock, clock.now() + HOUR, () => fired++);
    clock.jump(200);
    clock.advance(3 * WALL_CHECK_MS);
    expect(fired).toBe(0);
  });

  it('can be cancelled, leaving no timer behind', () => {
    const clock = new FakeClock();
    let fired = 0;
    const cancel = setWallTimer(clock, clock.now() + HOUR, () => fired++);
    clock.advance(2 * WALL_CHECK_MS + 1);
    cancel();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(2 * HOUR);
    expect(fired).toBe(0);
  });
});
