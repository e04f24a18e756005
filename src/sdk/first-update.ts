/** A promise settled by the first update of a watch, or by its failure. */
export function waitForFirst<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Later settlements are no-ops; an unobserved rejection must not crash the process.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * Waits for a source's first update. The watch ending first (closed, or a fatal status)
 * fails the wait; on failure the source is closed before the error is rethrown.
 */
export async function awaitFirstUpdate<T>(
  first: ReturnType<typeof waitForFirst<T>>,
  watch: Promise<void>,
  closedError: () => Error,
  close: () => Promise<void>,
): Promise<void> {
  watch.then(
    () => first.reject(closedError()),
    (err: unknown) => first.reject(err),
  );
  try {
    await first.promise;
  } catch (err) {
    await close();
    throw err;
  }
}
