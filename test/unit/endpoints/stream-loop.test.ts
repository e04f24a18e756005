/**
 * The loop every server stream runs (src/endpoints/stream/pump.ts), for what an open stream holds
 * while it waits between updates: no AbortController (made per run), no once() wrappers on the call.
 */
import { EventEmitter } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { Subscription } from '../../../src/cache/manager.js';
import { runStreamLoop, type StreamCall, type StreamCache } from '../../../src/endpoints/stream/pump.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const turn = () => new Promise((r) => setImmediate(r));

function fakeCache(): StreamCache & { closed: number; change(): void } {
  const subs = new Set<() => void>();
  const c = {
    closed: 0,
    change: () => subs.forEach((f) => f()),
    subscribe: (_s: unknown, onChange: () => void) => {
      subs.add(onChange);
      return { close: () => (c.closed++, subs.delete(onChange)) } as unknown as Subscription;
    },
  };
  return c as unknown as StreamCache & { closed: number; change(): void };
}

describe('stream loop', () => {
  it('keeps no AbortSignal between runs', async () => {
    const call = new EventEmitter();
    let seen: WeakRef<AbortSignal> | undefined;
    let runs = 0;
    const loop = runStreamLoop(call as unknown as StreamCall, {
      cache: fakeCache(),
      selectors: [],
      step: async (l) => {
        runs++;
        seen = new WeakRef(l.signal);
      },
    });
    loop.run();
    await turn();
    expect(runs).toBe(1);
    gc();
    await turn();
    gc();
    expect(seen!.deref()).toBeUndefined();
    expect(loop.ended).toBe(false);
  });

  it('makes no AbortController for a run that does not read the signal, nor at the end; a signal read after the end is aborted', async () => {
    const call = new EventEmitter();
    const made: AbortController[] = [];
    const Real = globalThis.AbortController;
    globalThis.AbortController = class extends Real {
      constructor() {
        super();
        made.push(this);
      }
    };
    try {
      const loop = runStreamLoop(call as unknown as StreamCall, { cache: fakeCache(), selectors: [], step: async () => undefined });
      loop.run();
      await turn();
      call.emit('cancelled');
      expect(loop.ended).toBe(true);
      expect(made).toHaveLength(0);
      expect(loop.signal.aborted).toBe(true);
    } finally {
      globalThis.AbortController = Real;
    }
  });

  it('aborts the signal of the run under way when the client goes away, and ends once', async () => {
    const call = new EventEmitter();
    const cache = fakeCache();
    let during: AbortSignal | undefined;
    let release!: () => void;
    let finished = 0;
    const loop = runStreamLoop(call as unknown as StreamCall, {
      cache,
      selectors: [],
      step: async (l) => {
        during = l.signal;
        await new Promise<void>((r) => (release = r));
      },
      onFinish: () => finished++,
    });
    loop.run();
    await turn();
    expect(during!.aborted).toBe(false);
    call.emit('cancelled');
    expect(during!.aborted).toBe(true);
    expect(loop.ended).toBe(true);
    expect(loop.signal.aborted).toBe(true);
    call.emit('close');
    call.emit('error', new Error('x'));
    release();
    await turn();
    expect(finished).toBe(1);
    expect(cache.closed).toBe(1);
  });

  it('coalesces a burst of changes into one more run', async () => {
    const call = new EventEmitter();
    const cache = fakeCache();
    let runs = 0;
    let release!: () => void;
    const loop = runStreamLoop(call as unknown as StreamCall, {
      cache,
      selectors: [],
      step: async () => {
        runs++;
        if (runs === 1) await new Promise<void>((r) => (release = r));
      },
    });
    loop.run();
    await turn();
    cache.change();
    cache.change();
    cache.change();
    release();
    await turn();
    await turn();
    expect(runs).toBe(2);
  });

  it('listens for the ends of the call without once() wrappers (each is held for the life of the stream)', () => {
    const call = new EventEmitter();
    runStreamLoop(call as unknown as StreamCall, { cache: fakeCache(), selectors: [], step: async () => {} });
    for (const ev of ['cancelled', 'close', 'error']) {
      expect(call.listenerCount(ev)).toBe(1);
      // once() registers a wrapper whose `listener` is the function given.
      expect(call.rawListeners(ev).every((l) => !('listener' in l))).toBe(true);
    }
  });
});
