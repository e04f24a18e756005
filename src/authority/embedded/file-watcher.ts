import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Clock } from '../../clock.js';

export interface FileWatcherOptions {
  clock: Clock;
  debounceMs?: number;
  pollMs?: number;
}

/**
 * Calls `onChange` when any of `files` may have changed. fs.watch on the parent
 * directory catches editors that replace files by rename; it is debounced because one
 * save produces several events. A periodic stat comparison backs it up, since fs.watch
 * misses events on some filesystems (NFS, some container overlays). Callers re-read and
 * compare content, so a spurious call is harmless.
 */
export class FileWatcher {
  private readonly watchers: FSWatcher[] = [];
  private readonly signatures = new Map<string, string>();
  private cancelDebounce: (() => void) | undefined;
  private cancelPoll: (() => void) | undefined;
  private closed = false;
  private readonly debounceMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly files: readonly string[],
    private readonly onChange: () => void,
    private readonly o: FileWatcherOptions,
  ) {
    this.debounceMs = o.debounceMs ?? 100;
    this.pollMs = o.pollMs ?? 2000;
  }

  async start(): Promise<void> {
    for (const f of this.files) this.signatures.set(f, await signature(f));
    const byDir = new Map<string, Set<string>>();
    for (const f of this.files) {
      const names = byDir.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      byDir.set(dirname(f), names);
    }
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || names.has(name.toString())) this.debounced();
        });
        w.on('error', () => w.close()); // directory removed: the poll keeps going
        this.watchers.push(w);
      } catch {
        // Directory missing or not watchable: the poll alone covers it.
      }
    }
    this.schedulePoll();
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    this.cancelDebounce?.();
    this.cancelPoll?.();
  }

  private debounced(): void {
    if (this.closed) return;
    this.cancelDebounce?.();
    this.cancelDebounce = this.o.clock.setTimer(this.debounceMs, () => {
      this.cancelDebounce = undefined;
      void this.refreshSignatures().then(() => !this.closed && this.onChange());
    });
  }

  private schedulePoll(): void {
    if (this.closed) return;
    this.cancelPoll = this.o.clock.setTimer(this.pollMs, () => {
      void this.refreshSignatures().then((changed) => {
        if (changed && !this.closed) this.onChange();
        this.schedulePoll();
      });
    });
  }

  private async refreshSignatures(): Promise<boolean> {
    let changed = false;
    for (const f of this.files) {
      const s = await signature(f);
      if (this.signatures.get(f) !== s) changed = true;
      this.signatures.set(f, s);
    }
    return changed;
  }
}

async function signature(file: string): Promise<string> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return 'absent';
  }
}
