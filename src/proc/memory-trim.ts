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
  /** Called after each trim with the RSS before and after, in bytes. */
  readonly onTrim?: (before: number, after: number) => void;
}

const processCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

let gcFn: (() => void) | undefined;

/**
 * A full garbage collection. Node exposes `gc` only under --expose-gc; setting the flag at run
 * time makes V8 install `gc` in contexts created afterwards, so one small context lends it.
 */
export function fullGc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      setFlagsFromString('--expose-gc');
      try {
        gcFn = runInNewContext('gc') as () => void;
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
  }
  gcFn();
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
    this.trims++;
    // The trim's own CPU time is not work to trim after.
    this.lastCpu = this.cpuMs();
    this.o.onTrim?.(before, process.memoryUsage.rss());
    return true;
  }
}
