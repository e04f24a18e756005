import type { Clock } from '../../clock.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import type { RegistrationEntry } from '../types.js';
import { runStepsAsync, type Steps } from '../../parse/steps.js';
import { INPUT_LIMITS, InputFileError, readBoundedFile } from '../../storage/bounded-file.js';
import { EntriesFileError, parseEntriesFileAsync, type EntryDefinition } from './entries-file.js';
import { FileWatcher } from './file-watcher.js';

export interface EntriesSourceOptions {
  /** undefined: no entries file, zero entries. */
  file: string | undefined;
  trustDomain: string;
  clock: Clock;
  log: Logger;
  onChange: () => void;
}

export interface ReloadResult {
  changed: boolean;
  /** Set when the file could not be used; the previous entries stay in effect. */
  error?: Error;
}

/**
 * The registration entries of the embedded authority, reloaded on demand (SIGHUP) and
 * when the file changes. A broken file never empties the set: it is reported and the
 * previous entries stay. Ids, creation times and revision numbers are stable across
 * reloads for as long as the process runs.
 */
export class EntriesSource {
  private current: RegistrationEntry[] = [];
  private watcher: FileWatcher | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: EntriesSourceOptions) {}

  /**
   * Loads the file. A broken or unreadable file at start-up is an error: there are no previous
   * entries to keep, and starting with none would withdraw every identity without saying so.
   * A missing file is not: the agent serves no entries until it appears.
   */
  async start(): Promise<void> {
    const file = this.o.file;
    if (file === undefined) return;
    // Quiet: the reload's own log line ("keeping the previous entries") is wrong before there are any.
    const r = await this.reload({ quiet: true });
    if (r.error && !isMissing(r.error)) throw r.error instanceof EntriesFileError ? r.error.withOutcome('start') : r.error;
    if (r.error) this.o.log.warn({ [F.path]: file }, 'Registration entries file does not exist; serving no entries until it appears');
    this.watcher = new FileWatcher([file], () => void this.reload(), { clock: this.o.clock });
    await this.watcher.start();
  }

  entries(): readonly RegistrationEntry[] {
    return this.current;
  }

  /** Re-read the file now. Never throws; see ReloadResult. Reloads run one at a time. */
  reload(opts: { quiet?: boolean } = {}): Promise<ReloadResult> {
    const run = this.queue.then(() => this.doReload(opts.quiet ?? false));
    this.queue = run;
    return run;
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
  }

  /** `quiet`: the caller reports the error itself (SIGHUP path), so do not log it twice. */
  private async doReload(quiet: boolean): Promise<ReloadResult> {
    const file = this.o.file;
    if (file === undefined || this.closed) return { changed: false };
    let defs: EntryDefinition[];
    try {
      const text = await readBoundedFile(file, { maxBytes: INPUT_LIMITS.entries, what: 'registration entries file' });
      // In slices: a reload of a large file must not stall the Workload API it feeds.
      defs = await parseEntriesFileAsync(file, text, this.o.trustDomain);
    } catch (err) {
      const error = err instanceof EntriesFileError ? err.withOutcome('reload') : (err as Error);
      if (quiet) return { changed: false, error };
      if (isMissing(error)) {
        this.o.log.warn({ [F.path]: file }, 'Registration entries file does not exist; keeping the current entries until it appears');
      } else {
        this.o.log.error({ [F.path]: file, [F.error]: error.message }, 'Registration entries file is invalid; keeping the previous entries');
      }
      return { changed: false, error };
    }
    const nowSec = Math.floor(this.o.clock.now() / 1000);
    const live = defs.filter((d) => {
      if (d.entryExpiry === 0 || d.entryExpiry > nowSec) return true;
      this.o.log.warn({ [F.entryId]: d.id, [F.spiffeId]: d.spiffeId }, 'Registration entry has expired (entry_expiry); ignoring it');
      return false;
    });
    const next = await runStepsAsync(merge(this.current, live, nowSec));
    const changed = !sameEntries(this.current, next);
    this.current = next;
    if (changed) {
      this.o.log.info({ [F.path]: file, count: next.length }, 'Loaded registration entries');
      if (!this.closed) this.o.onChange();
    }
    return { changed };
  }
}

function* merge(prev: readonly RegistrationEntry[], defs: readonly EntryDefinition[], nowSec: number): Steps<RegistrationEntry[]> {
  const byId = new Map(prev.map((e) => [e.id, e]));
  const out: RegistrationEntry[] = [];
  for (const d of defs) {
    if (out.length % 256 === 255) yield;
    const content = contentOf(d);
    const old = byId.get(d.id);
    if (old && contentKey(old) === contentKey(content)) {
      out.push(old);
      continue;
    }
    out.push(
      Object.freeze({
        ...content,
        id: d.id,
        createdAt: old?.createdAt ?? nowSec,
        revisionNumber: old ? old.revisionNumber + 1 : 0,
      }),
    );
  }
  return out;
}

type Content = Omit<RegistrationEntry, 'id' | 'createdAt' | 'revisionNumber'>;

function contentOf(d: EntryDefinition): Content {
  return {
    spiffeId: d.spiffeId,
    parentId: d.parentId,
    selectors: Object.freeze(d.selectors.map((s) => Object.freeze({ type: s.type, value: s.value }))),
    x509SvidTtl: d.x509SvidTtl,
    jwtSvidTtl: d.jwtSvidTtl,
    dnsNames: Object.freeze([...d.dnsNames]),
    hint: d.hint,
    federatesWith: Object.freeze([...d.federatesWith]),
    admin: d.admin,
    downstream: d.downstream,
    jwtSvidIncludeJti: d.jwtSvidIncludeJti,
  };
}

function contentKey(c: Content): string {
  return JSON.stringify([
    c.spiffeId,
    c.parentId,
    c.selectors.map((s) => [s.type, s.value]),
    c.x509SvidTtl,
    c.jwtSvidTtl,
    c.dnsNames,
    c.hint,
    c.federatesWith,
    c.admin,
    c.downstream,
    c.jwtSvidIncludeJti,
  ]);
}

function sameEntries(a: readonly RegistrationEntry[], b: readonly RegistrationEntry[]): boolean {
  return a.length === b.length && a.every((e, i) => e === b[i]);
}

function isMissing(err: Error): boolean {
  return err instanceof InputFileError && err.code === 'input_not_found';
}
