/**
 * Long parses are written as generators that `yield` every so often. The same code then runs
 * two ways: straight through (start-up, tests, CLI) or in slices with the event loop served
 * in between (reloads in the running daemon), so a large input never stalls the Workload API.
 */
export type Steps<T> = Generator<void, T, void>;

/** Runs to completion without giving up the thread. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs in slices of about `sliceMs` of CPU time, yielding to the event loop between slices
 * (setImmediate, so pending I/O callbacks and timers run first).
 */
export async function runStepsAsync<T>(steps: Steps<T>, sliceMs = 5): Promise<T> {
  let start = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - start >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      start = performance.now();
    }
  }
}
