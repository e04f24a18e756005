/**
 * Gives memory back to the OS when the agent goes idle after work (issue 9: RSS after bursts and
 * connection churn). Go's runtime (spire-agent) does this by itself; V8 and glibc keep their
 * high-water mark: V8 keeps old-space pages whose objects died until a major GC that is not urged
 * by allocation, and glibc keeps freed chunks (nghttp2 sessions, socket buffers) in its arenas.
 *
 * Every second the trimmer reads the process's CPU time. Once the agent has done some work since
 * the last trim (at least `busyCpuMs` of CPU, start-up included) and then spends a whole interval
 * idle (under `idleCpuMs`), it runs one full GC and malloc_trim(0). Under steady load it never
 * runs, so it adds no pauses to serving; a trim costs 10–30 ms of CPU with 1,000 entries.
 */
import koffi from 'koffi';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryTrimmerOptions {
  /** A full, blocking garbage collection; `fullGc()` by default. */
  readonly gc?: () => void;
  /** Returns freed heap memory to the OS (glibc malloc_trim); `mallocTrim()` by default, absent on other libcs. */
  readonly mallocTrim?: (() => void) | undefined;
  /** Process CPU time in ms (user + system). */
  readonly cpuMs?: () => number;
  readonly intervalMs?: number;
  /** CPU time in one interval under which the agent counts as idle. */
  readonly idleCpuMs?: number;
  /** CPU time since the last trim that makes the next idle interval worth a trim. */
  readonly busyCpuMs?: number;
  /**
   * Run at the first trim only (after start-up): hands back the file pages that start-up touched
   * and serving does not need; `pageOutFileMappings` by default, undefined to skip.
   */
  readonly pageOut?: (() => void) | undefined;
  /** Called after each trim with the RSS before and after, in bytes. */
  readonly onTrim?: (before: number, after: number) => void;
}

const processCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

type GcFn = (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
let gcFn: GcFn | undefined;

/**
 * A full garbage collection that also gives the heap's emptied pages back. Node exposes `gc` only
 * under --expose-gc; setting the flag at run time makes V8 install `gc` in contexts created
 * afterwards, so one small context lends it.
 *
 * One plain full GC frees objects but leaves most emptied 256 KiB old-space pages committed until
 * a later GC (after an HTTP/2 attack: 94 MiB of heap for 13 MiB used; 42 after one GC, 17 after
 * a second). V8 12 and later (Node 22+) have a memory-reducing collection, the "last-resort"
 * flavour, that does it in one call (133 → 6 MiB on Node 24 where a plain GC kept 133); V8 11
 * (Node 20) does not know the options and, given them, collects nothing, so it gets two plain GCs.
 */
export function fullGc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: GcFn }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      setFlagsFromString('--expose-gc');
      try {
        gcFn = runInNewContext('gc') as GcFn;
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
  }
  if (Number.parseInt(process.versions.v8, 10) >= 12) {
    gcFn({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } else {
    gcFn();
    gcFn();
  }
}

const MADV_PAGEOUT = 21;

/**
 * The read-only, file-backed mappings in a /proc/<pid>/maps text, as [start, length] pairs:
 * the node binary's code and read-only data, and shared libraries'. Writable mappings (their
 * copy-on-write pages are anonymous memory) and special ones ([vdso], [heap]) are left out.
 */
export function readOnlyFileMappings(maps: string): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const line of maps.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (r-x|r--)p \S+ \S+ [1-9]\d* +(\/.*)$/.exec(line);
    if (!m) continue;
    const start = BigInt(`0x${m[1]!}`);
    out.push([start, BigInt(`0x${m[2]!}`) - start]);
  }
  return out;
}

/**
 * After start-up, about 40 MiB of the agent's RSS is the node binary's pages that were touched
 * once (bootstrap, module compilation, ICU set-up) and never again. MADV_PAGEOUT (Linux 5.4+)
 * reclaims those of them that no other process maps, so the memory goes back to the node instead
 * of waiting for memory pressure; pages still in use fault back in on their next touch. Pages
 * shared with other processes are skipped by the kernel, and an older kernel's EINVAL is ignored.
 */
export function pageOutFileMappings(maps = (): string => readFileSync('/proc/self/maps', 'utf8')): void {
  let madvise: (addr: bigint, len: bigint, advice: number) => number;
  try {
    madvise = koffi.load('libc.so.6').func('int madvise(uintptr_t, size_t, int)') as typeof madvise;
  } catch {
    return;
  }
  for (const [start, len] of readOnlyFileMappings(maps())) if (madvise(start, len, MADV_PAGEOUT) !== 0) return;
}

let trimFn: (() => void) | null | undefined;

/** glibc's malloc_trim(0), or undefined where the libc has none (musl). */
export function mallocTrim(): (() => void) | undefined {
  if (trimFn === undefined) {
    try {
      const f = koffi.load('libc.so.6').func('int malloc_trim(size_t)');
      trimFn = () => void f(0);
    } catch {
      trimFn = null;
    }
  }
  return trimFn ?? undefined;
}

export class MemoryTrimmer {
  private readonly gc: () => void;
  private readonly trim: (() => void) | undefined;
  private pageOut: (() => void) | undefined;
  private readonly cpuMs: () => number;
  private readonly idleCpuMs: number;
  private readonly busyCpuMs: number;
  private readonly intervalMs: number;
  private lastCpu: number;
  private busy: number;
  private timer: NodeJS.Timeout | undefined;
  /** Trims done (for tests and the debug log). */
  trims = 0;

  constructor(private readonly o: MemoryTrimmerOptions = {}) {
    this.gc = o.gc ?? fullGc;
    this.trim = 'mallocTrim' in o ? o.mallocTrim : mallocTrim();
    this.pageOut = 'pageOut' in o ? o.pageOut : () => pageOutFileMappings();
    this.cpuMs = o.cpuMs ?? processCpuMs;
    this.intervalMs = o.intervalMs ?? 1000;
    this.idleCpuMs = o.idleCpuMs ?? 50;
    this.busyCpuMs = o.busyCpuMs ?? 500;
    // Start-up counts as work: the first idle second after it gets a trim.
    this.busy = this.cpuMs();
    this.lastCpu = this.busy;
  }

  start(): this {
    this.timer ??= setInterval(() => this.tick(), this.intervalMs).unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One interval: returns true when it trimmed. */
  tick(): boolean {
    const now = this.cpuMs();
    const used = now - this.lastCpu;
    this.lastCpu = now;
    if (used >= this.idleCpuMs) {
      this.busy += used;
      return false;
    }
    if (this.busy < this.busyCpuMs) return false;
    this.busy = 0;
    const before = this.o.onTrim ? process.memoryUsage.rss() : 0;
    this.gc();
    this.trim?.();
    // Once: after a burst the pages touched are the ones the next burst needs.
    this.pageOut?.();
    this.pageOut = undefined;
    this.trims++;
    // The trim's own CPU time is not work to trim after.
    this.lastCpu = this.cpuMs();
    this.o.onTrim?.(before, process.memoryUsage.rss());
    return true;
  }
}
