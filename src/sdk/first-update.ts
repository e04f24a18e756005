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
