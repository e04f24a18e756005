/**
 * Shared settings for the property-based fuzz tests (fast-check). CI runs them with a fixed
 * seed, so a failure reproduces; FUZZ_SEED and FUZZ_RUNS override it for longer local runs.
 * Each property also has a total time budget: on a loaded machine it runs fewer cases rather
 * than timing out, and `interruptAfterTimeLimit` never turns that into a failure.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { SpiffeAgentError } from '../../../src/errors.js';

export { fc };

export function settings(numRuns: number, budgetMs = 5_000): fc.Parameters<unknown> {
  const runs = process.env['FUZZ_RUNS'];
  const seed = process.env['FUZZ_SEED'];
  return {
    seed: seed === undefined ? 42 : Number(seed),
    numRuns: runs === undefined ? numRuns : Number(runs),
    interruptAfterTimeLimit: budgetMs,
    markInterruptAsFailure: false,
  };
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
