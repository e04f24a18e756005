import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MemoryTrimmer, fullGc, mallocTrim, readOnlyFileMappings } from '../../../src/proc/memory-trim.js';

/** A trimmer on a fake CPU clock; `work(ms)` is CPU spent before the next tick. */
function fake(opts: { busyCpuMs?: number; idleCpuMs?: number } = {}) {
  let cpu = 1000; // start-up already spent
  const calls: string[] = [];
  const t = new MemoryTrimmer({ cpuMs: () => cpu, gc: () => calls.push('gc'), mallocTrim: () => calls.push('trim'), pageOut: () => calls.push('pageout'), ...opts });
  return { t, calls, work: (ms: number) => (cpu += ms) };
}

describe('MemoryTrimmer', () => {
  it('trims once in the first idle interval after start-up, then not while idle', () => {
    const { t, calls } = fake();
    expect(t.tick()).toBe(true);
    expect(calls).toEqual(['gc', 'trim', 'pageout']);
    for (let i = 0; i < 10; i++) expect(t.tick()).toBe(false);
    expect(t.trims).toBe(1);
  });

  it('pages file mappings out after start-up only, not after later bursts', () => {
    const { t, calls, work } = fake();
    t.tick();
    work(2000);
    t.tick();
    expect(t.tick()).toBe(true);
    expect(calls).toEqual(['gc', 'trim', 'pageout', 'gc', 'trim']);
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
    const t = new MemoryTrimmer({ cpuMs: () => cpu, gc: () => (cpu += 400), mallocTrim: undefined, pageOut: undefined, busyCpuMs: 500 });
    expect(t.tick()).toBe(true);
    expect(t.tick()).toBe(false);
    expect(t.tick()).toBe(false);
  });

  it('runs on a timer that does not keep the process alive, and stops', async () => {
    let cpu = 1000;
    const t = new MemoryTrimmer({ cpuMs: () => cpu, gc: () => {}, mallocTrim: undefined, pageOut: undefined, intervalMs: 10 }).start();
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

  it('fullGc leaves no more heap committed than a plain full GC, and far less on V8 12+ (its memory-reducing GC)', () => {
    const url = pathToFileURL(join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'dist/src/proc/memory-trim.js')).href;
    // ~60 MiB of small objects that die at once. Node 24's plain full GC keeps ~135 MiB committed
    // afterwards, its memory-reducing one ~6; Node 20 knows no such GC (fullGc runs two plain ones).
    const script = `
      const { fullGc } = await import(${JSON.stringify(url)});
      let keep = [];
      for (let i = 0; i < 400000; i++) keep.push({ a: i, b: 'x'.repeat(100) + i });
      keep = null;
      await new Promise((r) => setImmediate(r));
      globalThis.gc();
      const plain = process.memoryUsage().heapTotal;
      fullGc();
      console.log(JSON.stringify({ plain, reduced: process.memoryUsage().heapTotal }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })) as { plain: number; reduced: number };
    expect(out.reduced).toBeLessThanOrEqual(out.plain);
    if (Number.parseInt(process.versions.v8, 10) >= 12) expect(out.reduced).toBeLessThan(out.plain / 2);
  });

  it('mallocTrim is glibc malloc_trim here (node links glibc on this platform)', () => {
    const trim = mallocTrim();
    expect(trim).toBeTypeOf('function');
    expect(() => trim!()).not.toThrow();
    expect(() => fullGc()).not.toThrow();
  });
});

describe('pageOutFileMappings', () => {
  it('picks read-only file mappings only: not writable ones, anonymous ones or [vdso]', () => {
    const maps = [
      '55d0c0000000-55d0c2000000 r--p 00000000 fd:01 1234  /usr/bin/node',
      '55d0c2000000-55d0c4000000 r-xp 02000000 fd:01 1234  /usr/bin/node',
      '55d0c4000000-55d0c4100000 rw-p 04000000 fd:01 1234  /usr/bin/node',
      '7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ',
      '7f0000200000-7f0000300000 r--p 00000000 00:00 0 ',
      '7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0  [vdso]',
      '7f0000400000-7f0000401000 r--s 00000000 fd:01 99  /dev/shm/x',
      '7f1000000000-7f1000010000 r-xp 00000000 fd:01 77  /lib/x86_64-linux-gnu/libc.so.6 (deleted)',
    ].join('\n');
    expect(readOnlyFileMappings(maps)).toEqual([
      [0x55d0c0000000n, 0x2000000n],
      [0x55d0c2000000n, 0x2000000n],
      [0x7f1000000000n, 0x10000n],
    ]);
  });

  it('gives back the node binary pages start-up touched: file RSS drops, and the process keeps running', () => {
    // A copy of node, so that no other process (the test runner, a bench) shares its pages:
    // the kernel never pages out a page another process maps.
    const dir = mkdtempSync(join(tmpdir(), 'pageout-'));
    try {
      const node = join(dir, 'node');
      copyFileSync(process.execPath, node);
      chmodSync(node, 0o755);
      const url = pathToFileURL(join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'dist/src/proc/memory-trim.js')).href;
      const script = `
        const { readFileSync } = await import('node:fs');
        // smaps_rollup walks the page tables; /proc/self/status counters may lag behind.
        const file = () => Number(/Rss:\\s+(\\d+)/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]) - Number(/Anonymous:\\s+(\\d+)/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]);
        const { pageOutFileMappings } = await import(${JSON.stringify(url)});
        const before = file();
        pageOutFileMappings();
        const after = file();
        let s = 0;
        for (let i = 0; i < 1e5; i++) s += JSON.stringify({ i }).length;
        console.log(JSON.stringify({ before, after, works: s > 0 }));`;
      const out = JSON.parse(execFileSync(node, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })) as { before: number; after: number; works: boolean };
      expect(out.works).toBe(true);
      // Start-up touches tens of MiB of node's pages; at least 10 MiB of them go back.
      expect(out.before - out.after).toBeGreaterThan(10 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
