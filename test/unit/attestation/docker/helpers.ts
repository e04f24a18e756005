import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../../../src/clock.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { ProcReader } from '../../../../src/proc/proc-reader.js';
import { FakeClock } from '../../../helpers/fake-clock.js';

export function dockerPlugin(data: Record<string, unknown> = {}): PluginConfig {
  return { type: 'WorkloadAttestor', name: 'docker', enabled: true, data, dataFile: undefined, path: 'plugins.WorkloadAttestor.docker' };
}

/**
 * A /proc root for a REAL pid of this machine whose cgroup file says what the test needs
 * (no container runtime runs here); mountinfo is the process's real one.
 */
export function procRootFor(pid: number, cgroupText: string): { proc: ProcReader; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'proc-'));
  mkdirSync(join(root, String(pid)));
  writeFileSync(join(root, String(pid), 'cgroup'), cgroupText);
  writeFileSync(join(root, String(pid), 'mountinfo'), readFileSync(`/proc/${pid}/mountinfo`));
  return { proc: new ProcReader(root), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A FakeClock that records each timer's delay and fires timers as soon as they are set. */
export class RecordingClock implements Clock {
  readonly delays: number[] = [];
  private readonly inner = new FakeClock();

  now(): number {
    return this.inner.now();
  }

  setTimer(ms: number, fn: () => void): () => void {
    this.delays.push(ms);
    const cancel = this.inner.setTimer(ms, fn);
    if (!this.hold) queueMicrotask(() => this.inner.advance(ms));
    return cancel;
  }

  /** When true, timers wait for advance(). */
  hold = false;

  advance(ms: number): void {
    this.inner.advance(ms);
  }

  get pendingTimers(): number {
    return this.inner.pendingTimers;
  }
}
