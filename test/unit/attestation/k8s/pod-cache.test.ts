import { describe, expect, it } from 'vitest';
import { PodListCache } from '../../../../src/attestation/workload/k8s/pod-cache.js';
import { FakeClock } from '../../../helpers/fake-clock.js';

/** A pod list source the test answers by hand. */
function source() {
  const calls: { resolve(body: string): void; reject(err: Error): void }[] = [];
  const fn = (_signal: AbortSignal) => new Promise<string>((resolve, reject) => calls.push({ resolve, reject }));
  return { fn, calls };
}
const never = new AbortController().signal;
const EMPTY = '{"items":[]}';

describe('pod list cache', () => {
  it('shares one in-flight fetch among every caller, even when the last fetch is long past', async () => {
    const clock = new FakeClock();
    const src = source();
    const cache = new PodListCache(src.fn, clock, 500);
    const first = cache.next(0, never);
    src.calls[0]!.resolve(EMPTY);
    expect((await first).version).toBe(1);
    clock.advance(10_000);
    const waiting = Array.from({ length: 20 }, () => cache.next(0, new AbortController().signal));
    expect(src.calls).toHaveLength(2);
    src.calls[1]!.resolve(EMPTY);
    expect(new Set((await Promise.all(waiting)).map((l) => l.version))).toEqual(new Set([2]));
  });

  it('makes a caller who has seen version N wait for N+1, no sooner than poll_retry_interval after the last fetch', async () => {
    const clock = new FakeClock();
    const src = source();
    const cache = new PodListCache(src.fn, clock, 500);
    const p = cache.next(0, never);
    src.calls[0]!.resolve(EMPTY);
    const v1 = await p;
    const next = cache.next(v1.version, never);
    expect(src.calls).toHaveLength(1);
    clock.advance(499);
    expect(src.calls).toHaveLength(1);
    clock.advance(1);
    expect(src.calls).toHaveLength(2);
    src.calls[1]!.resolve(EMPTY);
    expect((await next).version).toBe(2);
  });

  it('gives a failed fetch to every waiter and does not cache it', async () => {
    const clock = new FakeClock();
    const src = source();
    const cache = new PodListCache(src.fn, clock, 500);
    const a = cache.next(0, never);
    const b = cache.next(0, never);
    src.calls[0]!.reject(new Error('boom'));
    await expect(a).rejects.toThrow('boom');
    await expect(b).rejects.toThrow('boom');
    const c = cache.next(0, never);
    clock.advance(500);
    src.calls[1]!.resolve('not json');
    await expect(c).rejects.toThrow(/unable to parse kubelet response/);
  });
});
