/** The fuzz helper's floor: a property runs its minimum number of cases even when the time budget is spent. */
import { describe, expect, it } from 'vitest';
import { fc, fuzz, fuzzPlan, MIN_RUNS_SHARE } from './fuzz.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('fuzz()', () => {
  it('plans a floor of a fifth of numRuns, the rest within the budget; FUZZ_RUNS and FUZZ_SEED override', () => {
    expect(MIN_RUNS_SHARE).toBe(0.2);
    expect(fuzzPlan(1500, 5_000, {})).toEqual({ seed: 42, minRuns: 300, extraRuns: 1200, budgetMs: 5_000 });
    expect(fuzzPlan(3, 5_000, {})).toEqual({ seed: 42, minRuns: 1, extraRuns: 2, budgetMs: 5_000 });
    expect(fuzzPlan(1500, 5_000, { FUZZ_RUNS: '100000', FUZZ_SEED: '7' })).toEqual({ seed: 7, minRuns: 20_000, extraRuns: 80_000, budgetMs: 5_000 });
  });

  it('runs the floor when every case is slower than the whole budget, and nothing after it', () => {
    let runs = 0;
    fuzz(
      fc.property(fc.nat(), () => {
        runs++;
        busy(3);
      }),
      50,
      1,
    );
    expect(runs).toBe(10);
  });

  it('the same for an async property', async () => {
    let runs = 0;
    await fuzz(
      fc.asyncProperty(fc.nat(), async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 3));
      }),
      50,
      1,
    );
    expect(runs).toBe(10);
  });

  it('runs all numRuns when the budget allows', () => {
    let runs = 0;
    fuzz(
      fc.property(fc.nat(), () => void runs++),
      50,
      60_000,
    );
    expect(runs).toBe(50);
  });

  it('fails on a counterexample found in the floor or after it', async () => {
    expect(() => fuzz(fc.property(fc.integer({ min: 0, max: 3 }), (n) => n !== 3), 50)).toThrow(/Property failed/);
    await expect(fuzz(fc.asyncProperty(fc.nat(), async () => false), 50)).rejects.toThrow(/Property failed/);
  });
});
