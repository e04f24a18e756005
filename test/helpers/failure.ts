/** The error a promise rejects with, for tests that check more than its message; a fulfilled promise fails the test. */
export async function failureOf(p: Promise<unknown>): Promise<Error & { code: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code: string };
  }
  throw new Error('expected a failure');
}
