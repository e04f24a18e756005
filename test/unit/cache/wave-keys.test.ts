/**
 * WaveKeys: a wave's key generations run a few at a time, in the order asked. The generator here
 * is a fake (a promise the test settles) so concurrency can be counted; one test uses real keys.
 */
import { describe, expect, it } from 'vitest';
import { WaveKeys, generateKeyAndCsrNow, type GeneratedKey } from '../../../src/cache/keys.js';

function fakeGenerator() {
  let running = 0;
  let max = 0;
  const started: Array<{ resolve: (k: GeneratedKey) => void; reject: (e: Error) => void }> = [];
  const generate = () =>
    new Promise<GeneratedKey>((resolve, reject) => {
      running++;
      max = Math.max(max, running);
      started.push({
        resolve: (k) => (running--, resolve(k)),
        reject: (e) => (running--, reject(e)),
      });
    });
  return { generate, started, max: () => max };
}

const key = (n: number): GeneratedKey => ({ pkcs8: new Uint8Array([n]), csrDer: new Uint8Array([n]) });
const tick = () => new Promise((r) => setImmediate(r));

describe('WaveKeys', () => {
  it('runs at most `limit` generations at once and hands keys out in the order asked', async () => {
    const g = fakeGenerator();
    const keys = new WaveKeys('ec-p256', 3, g.generate);
    const order: number[] = [];
    const all = Array.from({ length: 10 }, (_, i) => keys.next().then((k) => order.push(k.pkcs8[0]!)));
    await tick();
    expect(g.started).toHaveLength(3);
    for (let i = 0; i < 10; i++) {
      g.started[i]!.resolve(key(i));
      await tick();
    }
    await Promise.all(all);
    expect(g.max()).toBe(3);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('gives a failed generation’s slot to the next one', async () => {
    const g = fakeGenerator();
    const keys = new WaveKeys('ec-p256', 1, g.generate);
    const a = keys.next();
    const b = keys.next();
    await tick();
    g.started[0]!.reject(new Error('boom'));
    await expect(a).rejects.toThrow('boom');
    await tick();
    g.started[1]!.resolve(key(1));
    expect((await b).pkcs8[0]).toBe(1);
  });

  it('makes a waiting workload’s EC key at once, and real keys and CSRs by default', async () => {
    const now = generateKeyAndCsrNow('ec-p256');
    expect(now).not.toBeInstanceOf(Promise);
    const wave = await new WaveKeys('ec-p256').next();
    for (const k of [now as GeneratedKey, wave]) {
      expect(k.csrDer[0]).toBe(0x30);
      expect(k.pkcs8.length).toBeGreaterThan(100);
    }
  });
});
