/**
 * Wraps a stream's update step so it never runs twice at once: a call that arrives
 * during a run asks for exactly one more run, so a burst of changes costs one
 * recomputation, not one per change.
 */
export function coalesced(body: () => Promise<void>, isDone: () => boolean, onError: (err: unknown) => void): () => Promise<void> {
  let running = false;
  let again = false;
  return async () => {
    if (isDone()) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await body();
      } while (again && !isDone());
    } catch (err) {
      onError(err);
    } finally {
      running = false;
    }
  };
}
