/**
 * Shared settings for the property-based fuzz tests (fast-check). CI runs them with a fixed
 * seed, so a failure reproduces; FUZZ_SEED and FUZZ_RUNS override it for longer local runs.
 *
 * Each property runs a floor of cases whatever the clock says, then more up to its numRuns within
 * a time budget. The floor (MIN_RUNS_SHARE of numRuns) is what the test guarantees: a loaded
 * machine runs it more slowly instead of running a handful of cases and passing. Failing a property
 * that ran out of time instead would fail on load, not on a bug; the budget only trims the extra
 * cases, and the test's timeout stays the guard against a hang.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { SpiffeAgentError } from '../../../src/errors.js';

export { fc };

/** Share of a property's numRuns that always runs, past the time budget if need be. */
export const MIN_RUNS_SHARE = 0.2;

export interface FuzzPlan {
  seed: number;
  /** Cases run whatever the time: the first phase, seed `seed`. */
  minRuns: number;
  /** Cases after the floor, while the budget lasts: the second phase, seed `seed + 1`. */
  extraRuns: number;
  budgetMs: number;
}

export function fuzzPlan(numRuns: number, budgetMs = 5_000, env: NodeJS.ProcessEnv = process.env): FuzzPlan {
  const runs = env['FUZZ_RUNS'] === undefined ? numRuns : Number(env['FUZZ_RUNS']);
  const minRuns = Math.min(runs, Math.max(1, Math.ceil(runs * MIN_RUNS_SHARE)));
  return { seed: env['FUZZ_SEED'] === undefined ? 42 : Number(env['FUZZ_SEED']), minRuns, extraRuns: runs - minRuns, budgetMs };
}

type AnyProperty = fc.IRawProperty<unknown, boolean>;

/** Phase two's parameters, or undefined when nothing is left of numRuns or of the budget. */
function extraPhase(plan: FuzzPlan, started: number): fc.Parameters<unknown> | undefined {
  const left = plan.budgetMs - (performance.now() - started);
  if (plan.extraRuns <= 0 || left <= 0) return undefined;
  return { seed: plan.seed + 1, numRuns: plan.extraRuns, interruptAfterTimeLimit: left, markInterruptAsFailure: false };
}

/**
 * fc.assert with a floor: runs `fuzzPlan(numRuns).minRuns` cases with no time limit, then up to
 * the rest of numRuns until `budgetMs` (counted from the start) is spent. A failure in either phase
 * reports its seed and path (phase two's seed is FUZZ_SEED + 1).
 */
export function fuzz<Ts>(prop: fc.IAsyncProperty<Ts>, numRuns: number, budgetMs?: number): Promise<void>;
export function fuzz<Ts>(prop: fc.IProperty<Ts>, numRuns: number, budgetMs?: number): void;
export function fuzz(prop: AnyProperty, numRuns: number, budgetMs?: number): Promise<void> | void {
  const started = performance.now();
  const plan = fuzzPlan(numRuns, budgetMs);
  const floor: fc.Parameters<unknown> = { seed: plan.seed, numRuns: plan.minRuns };
  if (prop.isAsync()) {
    return (async () => {
      await fc.assert(prop as fc.IAsyncProperty<unknown>, floor);
      const more = extraPhase(plan, started);
      if (more) await fc.assert(prop as fc.IAsyncProperty<unknown>, more);
    })();
  }
  fc.assert(prop as fc.IProperty<unknown>, floor);
  const more = extraPhase(plan, started);
  if (more) fc.assert(prop as fc.IProperty<unknown>, more);
}

/** Longest one case may take; far above the real cost, far below a hang. */
export const CASE_BUDGET_MS = 2_000;

type ErrorClass = abstract new (...args: never[]) => SpiffeAgentError;

/**
 * Runs `fn`; passes if it returns or throws one of `allowed` (the module's typed errors).
 * Anything else (TypeError, RangeError, a plain Error) is a crash and fails the property,
 * as does a case slower than CASE_BUDGET_MS.
 */
export function onlyTypedErrors<T>(fn: () => T, ...allowed: ErrorClass[]): T | undefined {
  const t0 = performance.now();
  try {
    return fn();
  } catch (err) {
    if (!allowed.some((c) => err instanceof c)) throw err;
    return undefined;
  } finally {
    expect(performance.now() - t0, 'one fuzz case took too long').toBeLessThan(CASE_BUDGET_MS);
  }
}

export function onlyTypedErrorsAsync<T>(fn: () => Promise<T>, ...allowed: ErrorClass[]): Promise<T | undefined> {
  return onlyTypedErrorsWithin(CASE_BUDGET_MS, fn, ...allowed);
}

/** For cases that start a process (the HCL parser): the same check with a larger budget. */
export async function onlyTypedErrorsWithin<T>(budgetMs: number, fn: () => Promise<T>, ...allowed: ErrorClass[]): Promise<T | undefined> {
  const t0 = performance.now();
  try {
    return await fn();
  } catch (err) {
    if (!allowed.some((c) => err instanceof c)) throw err;
    return undefined;
  } finally {
    expect(performance.now() - t0, 'one fuzz case took too long').toBeLessThan(budgetMs);
  }
}

/** Text that is mostly JSON-shaped: valid documents, their mutations, and raw strings. */
export function jsonishText(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.json({ depthSize: 'medium' }),
    fc.json().chain((j) => fc.tuple(fc.nat(j.length), fc.nat(4), fc.string({ maxLength: 4 })).map(([at, del, ins]) => j.slice(0, at) + ins + j.slice(at + del))),
    fc.string({ unit: fc.constantFrom(...'{}[]":,0123456789.-+eEtruefalsnl \n\t\\u'.split('')), maxLength: 200 }),
    fc.string({ unit: 'binary', maxLength: 100 }),
  );
}
