import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MemoryTrimmer, fullGc, mallocTrim } from '../../../src/proc/memory-trim.js';

/** A trimmer on a fake CPU clock; `work(ms)` is CPU spent before the next tick. */
function fake(opts: { busyCpuMs?: number; idleCpuMs?: number } = {}) {
  let cpu = 1000; // start-up already spent
  const calls: string[] = [];
  const t = new MemoryTrimmer({ cpuMs: () => cpu, gc: () => calls.push('gc'), mallocTrim: () => calls.push('trim'), ...opts });
  return { t, calls, work: (ms: number) => (cpu += ms) };
}

describe('MemoryTrimmer', () => {
  it('trims once in the first idle interval after start-up, then not while idle', () => {
    const { t, calls } = fake();
    expect(t.tick()).toBe(true);
    expect(calls).toEqual(['gc', 'trim']);
    for (let i = 0; i < 10; i++) expect(t.tick()).toBe(false);
    expect(t.trims).toBe(1);
  });

  it('does not trim under steady load, and trims when the load stops', () => {
    const { t, work } = fake();
    t.tick(); // the start-up trim
    for (let i = 0; i < 20; i++) {
      work(300);
      expect(t.tick()).toBe(false);
    }
    work(10);
    expect(t.tick()).toBe(true);
    expect(t.trims).toBe(2);
  });

  it('ignores small work: a few requests do not cost a full GC', () => {
    const { t, work } = fake({ busyCpuMs: 500 });
    t.tick();
    for (let i = 0; i < 5; i++) {
      work(60); // busy interval, 300 ms in all
      t.tick();
      work(5);
      expect(t.tick()).toBe(false);
    }
    work(300); // 600 ms since the last trim
    t.tick();
    expect(t.tick()).toBe(true);
  });

  it('does not count its own GC as work', () => {
    let cpu = 1000;
    const t = new MemoryTrimmer({ cpuMs: () => cpu, gc: () => (cpu += 400), mallocTrim: undefined, busyCpuMs: 500 });
    expect(t.tick()).toBe(true);
    expect(t.tick()).toBe(false);
    expect(t.tick()).toBe(false);
  });

  it('runs on a timer that does not keep the process alive, and stops', async () => {
    let cpu = 1000;
    const t = new MemoryTrimmer({ cpuMs: () => cpu, gc: () => {}, mallocTrim: undefined, intervalMs: 10 }).start();
    await new Promise((r) => setTimeout(r, 60));
    expect(t.trims).toBe(1);
    t.stop();
    cpu += 1000;
    await new Promise((r) => setTimeout(r, 60));
    expect(t.trims).toBe(1);
  });
});

describe('fullGc and mallocTrim', () => {
  it('fullGc collects garbage without --expose-gc on the command line', () => {
    // In a child without flags, so that the test runner's own flags do not matter.
    const url = pathToFileURL(join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'dist/src/proc/memory-trim.js')).href;
    const script = `
      const { fullGc, mallocTrim } = await import(${JSON.stringify(url)});
      const { WeakRef } = globalThis;
      let ref = (() => new WeakRef({ big: new Array(1e5).fill(1) }))();
      await new Promise((r) => setTimeout(r, 0));
      fullGc();
      const trim = mallocTrim();
      if (trim) trim();
      console.log(JSON.stringify({ collected: ref.deref() === undefined, hasGc: typeof globalThis.gc, trim: typeof trim }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })) as Record<string, unknown>;
    expect(out).toEqual({ collected: true, hasGc: 'undefined', trim: 'function' });
  });

  it('mallocTrim is glibc malloc_trim here (node links glibc on this platform)', () => {
    const trim = mallocTrim();
    expect(trim).toBeTypeOf('function');
    expect(() => trim!()).not.toThrow();
    expect(() => fullGc()).not.toThrow();
  });
});
