/**
 * /proc access through one object with a configurable root, so tests can point
 * it at fixture trees and containers can set HOST_PROC.
 */
import { readFile, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FdExhaustedError, ProcError, isFdExhaustion, privilegeHint } from './errors.js';

export interface ProcStatus {
  /** Effective ids: the 2nd column of Uid:/Gid:, as the kernel uses for permission checks. */
  readonly uid: number;
  readonly gid: number;
  readonly realUid: number;
  readonly realGid: number;
  readonly groups: readonly number[];
  readonly name: string;
}

export class ProcReader {
  readonly root: string;
  /** `root` normalised once, with one trailing slash: paths are built by concatenation (see path()). */
  private readonly prefix: string;

  constructor(root = '/proc') {
    this.root = root;
    this.prefix = join(root, '/');
  }

  /**
   * /proc/<pid>[/<file>]. Concatenated rather than joined: several paths are built for every
   * connection, and path.join's normalisation (~1 % of the agent's CPU per connection) is
   * needed for the root only. `file` is always one of this class's own names.
   */
  path(pid: number, file?: string): string {
    return file === undefined ? `${this.prefix}${pid}` : `${this.prefix}${pid}/${file}`;
  }

  async status(pid: number): Promise<ProcStatus> {
    const text = await this.read(pid, 'status');
    return parseStatus(text, pid);
  }

  /**
   * Process start time in clock ticks since boot (field 22 of stat). A process that has
   * exited but not been reaped (a zombie) still has a stat file and a pid that signals
   * reach, so it counts as gone here: it can no longer be the caller of anything.
   * Read synchronously: it runs for every accepted connection, where fs/promises costs ~20
   * times the CPU of one read(2) and starves accept(2) in a burst; /proc/<pid>/stat takes no
   * mm lock, so it never blocks.
   */
  async startTime(pid: number): Promise<bigint> {
    let text: string;
    try {
      text = readFileSync(this.path(pid, 'stat'), 'utf8');
    } catch (err) {
      throw procError(pid, 'stat', err);
    }
    // One pass over the fields after the last ')': the state (3) and the start time (22).
    const rest = statFields(text);
    const state = rest[0];
    if (state === 'Z' || state === 'X' || state === 'x') {
      throw new ProcError('process_gone', `proc: process ${pid} has exited (state ${state})`);
    }
    return startTimeOf(rest, pid);
  }

  /** Synchronous for the reason given in read(): it runs for every attestation. */
  async exePath(pid: number): Promise<string> {
    try {
      return readlinkSync(this.path(pid, 'exe'));
    } catch (err) {
      throw procError(pid, 'exe', err);
    }
  }

  /**
   * Opens the binary through /proc/<pid>/exe rather than by path: that works for
   * processes in other mount namespaces and is immune to the path being replaced.
   */
  async openExe(pid: number): Promise<FileHandle> {
    try {
      return await open(this.path(pid, 'exe'), 'r');
    } catch (err) {
      // EACCES comes from the ptrace check on the link or from the binary's own mode; only
      // the second leaves the link readable, and each needs a different capability.
      let target: string | undefined;
      if (isDenied(err)) target = this.readableLink(pid);
      if (target === undefined) throw procError(pid, 'exe', err);
      const code = (err as NodeJS.ErrnoException).code;
      throw new ProcError('proc_denied', `proc: cannot open the executable of pid ${pid} (${target}) to hash it: ${code}: ${privilegeHint('dac')}`, { cause: err });
    }
  }

  private readableLink(pid: number): string | undefined {
    try {
      return readlinkSync(this.path(pid, 'exe'));
    } catch {
      return undefined;
    }
  }

  async cgroup(pid: number): Promise<string> {
    return this.read(pid, 'cgroup');
  }

  async mountinfo(pid: number): Promise<string> {
    return this.read(pid, 'mountinfo');
  }

  /** Owner of /proc/<pid>: the process's effective uid/gid as the kernel reports them (synchronous, see read()). */
  async owner(pid: number): Promise<{ uid: number; gid: number }> {
    try {
      const st = statSync(this.path(pid));
      return { uid: st.uid, gid: st.gid };
    } catch (err) {
      throw procError(pid, '', err);
    }
  }

  private async read(pid: number, file: string): Promise<string> {
    try {
      // stat and status are read for every connection and attestation, several times each.
      // They are a few hundred bytes generated from the task without sleeping locks, so one
      // read(2) here costs far less than fs/promises' open/fstat/read/read/close through the
      // thread pool (~30 % of the agent's CPU per connection, bench/compare.mjs profile).
      if (file === 'stat' || file === 'status') return readFileSync(this.path(pid, file), 'utf8');
      return await readFile(this.path(pid, file), 'utf8');
    } catch (err) {
      throw procError(pid, file, err);
    }
  }
}

/** EACCES or EPERM: the agent may not look, which says nothing about whether the process is there. */
function isDenied(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

function procError(pid: number, file: string, err: unknown): ProcError | FdExhaustedError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ESRCH') {
    return new ProcError('process_gone', `proc: process ${pid} no longer exists`, { cause: err });
  }
  if (isDenied(err)) {
    // exe is behind the ptrace access check; the other files only when hidepid hides the process.
    return new ProcError('proc_denied', `proc: cannot read /proc/${pid}/${file}: ${code}: ${privilegeHint(file === 'exe' ? 'ptrace' : 'hidepid')}`, { cause: err });
  }
  const errno = (err as NodeJS.ErrnoException).errno;
  if (typeof errno === 'number' && isFdExhaustion(-errno)) return new FdExhaustedError(`proc: reading /proc/${pid}/${file}`, -errno);
  return new ProcError('proc_read', `proc: cannot read /proc/${pid}/${file}: ${(err as Error).message}`, { cause: err });
}

/** The lines of /proc/<pid>/status the agent uses; the other ~50 are skipped without being split. */
const STATUS_KEYS = new Set(['Name', 'Uid', 'Gid', 'Groups']);

export function parseStatus(text: string, pid: number): ProcStatus {
  const fields = new Map<string, string>();
  for (let at = 0; at < text.length && fields.size < STATUS_KEYS.size; ) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    const i = text.indexOf(':', at);
    if (i > at && i < end) {
      const key = text.slice(at, i);
      if (STATUS_KEYS.has(key) && !fields.has(key)) fields.set(key, text.slice(i + 1, end).trim());
    }
    at = end + 1;
  }
  // Every id must be a decimal uid/gid: a NaN here would become a "unix:uid:NaN" selector and
  // compare unequal to everything, including itself.
  const list = (key: string, v: string, min: number): number[] => {
    const out = v.split(/\s+/).filter(Boolean).map((x) => (/^\d{1,10}$/.test(x) ? Number(x) : NaN));
    if (out.length < min || out.some((n) => !(n <= 0xffff_ffff))) {
      throw new ProcError('proc_malformed', `proc: /proc/${pid}/status has a malformed ${key} line ${JSON.stringify(v.slice(0, 80))}`);
    }
    return out;
  };
  const ids = (key: string): number[] => {
    const v = fields.get(key);
    if (v === undefined) throw new ProcError('proc_malformed', `proc: /proc/${pid}/status has no ${key} line`);
    return list(key, v, 1);
  };
  const uids = ids('Uid');
  const gids = ids('Gid');
  const groups = list('Groups', fields.get('Groups') ?? '', 0);
  return {
    // One column (some fixture and sandbox kernels): the real id is the effective one.
    uid: uids[1] ?? uids[0]!,
    gid: gids[1] ?? gids[0]!,
    realUid: uids[0]!,
    realGid: gids[0]!,
    groups,
    name: fields.get('Name') ?? '',
  };
}

/** Field 3 (state: R, S, D, Z, X, ...), read after the last ')' like the start time. */
export function parseStatState(text: string): string | undefined {
  return statFields(text)[0];
}

/** Field 22, counted after the last ')' so a command name with spaces or parens cannot shift it. */
export function parseStatStartTime(text: string, pid: number): bigint {
  return startTimeOf(statFields(text), pid);
}

/** The fields after "pid (comm) ": field 3 (state) is [0], field 22 (start time) is [19]. */
function statFields(text: string): string[] {
  const end = text.lastIndexOf(')');
  return end >= 0 ? text.slice(end + 2).split(' ', 20) : [];
}

function startTimeOf(rest: readonly string[], pid: number): bigint {
  const v = rest[19];
  if (v === undefined || !/^\d+$/.test(v)) throw new ProcError('proc_malformed', `proc: /proc/${pid}/stat has no start time`);
  return BigInt(v);
}
