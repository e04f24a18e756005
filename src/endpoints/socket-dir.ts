/**
 * Makes sure the directory a Unix socket is bound in cannot be taken over by another local
 * user. Whoever can write to the socket's directory, or rename an entry in any directory
 * above it, can put their own socket (or a symlink) where workloads connect, so root
 * workloads would talk to them. The rule, checked on both the path as written and its
 * resolved form:
 *
 * - every directory and symlink on the way is owned by root or by the agent's own uid;
 * - a parent writable by group or others must be sticky (as /tmp is), so nobody else can
 *   rename or remove the entries root or the agent own in it;
 * - the socket directory itself is writable by its owner only.
 *
 * Missing directories are created one at a time with mkdir's mode (never chmod by path),
 * so a directory another user created in a race is found and refused, never adopted.
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { SpiffeAgentError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';

export class SocketDirError extends SpiffeAgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('socket_dir_unsafe', message, options);
  }
}

export interface SocketDirOptions {
  /** The uid the agent runs as; besides root, the only owner trusted. */
  readonly euid: number;
  readonly log?: Logger | undefined;
  /** Which socket, for messages: "Workload API" or "admin". */
  readonly what?: string;
  /** Mode of directories the agent creates. 0755: workloads need search permission. */
  readonly createMode?: number;
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

/** Every prefix of an absolute path, from "/" down to the path itself. */
function prefixes(abs: string): string[] {
  const out: string[] = [sep];
  let cur = '';
  for (const part of abs.split(sep).filter(Boolean)) {
    cur += sep + part;
    out.push(cur);
  }
  return out;
}

/**
 * Creates the socket's directory where missing, checks it and every parent, and returns
 * the directory's resolved path. The socket should be bound there, not through the path
 * as written, so no symlink is followed after the check.
 */
export async function prepareSocketDir(socketPath: string, o: SocketDirOptions): Promise<string> {
  const what = o.what ?? 'socket';
  const dir = dirname(resolve(socketPath));
  const createMode = o.createMode ?? 0o755;
  const chain = prefixes(dir);
  for (const [i, p] of chain.entries()) {
    let st = await lstat(p).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new SocketDirError(`endpoints: cannot inspect ${p}, a parent of the ${what} socket ${socketPath}: ${err.message}`, { cause: err });
    });
    if (!st) {
      try {
        await mkdir(p, { mode: createMode });
        o.log?.info({ [F.path]: p }, `Creating ${what} socket directory`);
      } catch (err) {
        // Someone else created it in between: it is checked below like any existing one.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new SocketDirError(`endpoints: cannot create ${p} for the ${what} socket ${socketPath}: ${(err as Error).message}; create it (owned by root or uid ${o.euid}, mode 0755) or choose another path`, {
            cause: err,
          });
        }
      }
      st = await lstat(p);
    }
    checkEntry(p, st, i === chain.length - 1, socketPath, what, o.euid);
  }
  // The path as written is safe to walk; now the directories it actually leads to.
  const real = await realpath(dir).catch((err: Error) => {
    throw new SocketDirError(`endpoints: cannot resolve ${dir}, the directory of the ${what} socket ${socketPath}: ${err.message}; fix the symlink or choose another path`, { cause: err });
  });
  const realChain = prefixes(real);
  for (const [i, p] of realChain.entries()) {
    checkEntry(p, await lstat(p), i === realChain.length - 1, socketPath, what, o.euid);
  }
  return real;
}

function checkEntry(p: string, st: Stats, isSocketDir: boolean, socketPath: string, what: string, euid: number): void {
  const role = isSocketDir ? `the directory of the ${what} socket ${socketPath}` : `a parent of the ${what} socket ${socketPath}`;
  const facts = `owner uid ${st.uid}, mode ${octal(st.mode)}`;
  if (st.uid !== 0 && st.uid !== euid) {
    throw new SocketDirError(
      `endpoints: ${p} (${facts}) is ${role} and belongs to another user, who could replace the socket; ` +
        `the agent (uid ${euid}) accepts only root or itself as owner. Remove ${p} so the agent creates it, chown it to root, or choose another socket path`,
    );
  }
  // A link's target is checked on the resolved path; one owned by root or the agent is as safe as a directory.
  if (st.isSymbolicLink()) return;
  if (!st.isDirectory()) {
    throw new SocketDirError(`endpoints: ${p} (${facts}) is ${role} but not a directory; remove it or choose another socket path`);
  }
  if (isSocketDir && (st.mode & 0o022) !== 0) {
    throw new SocketDirError(
      `endpoints: ${p} (${facts}) is ${role} and is writable by users other than its owner, who could replace the socket; ` +
        `make it writable by its owner only (chmod go-w ${p}) or choose another socket path`,
    );
  }
  if (!isSocketDir && (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new SocketDirError(
      `endpoints: ${p} (${facts}) is ${role} and is writable by others without the sticky bit, so they could rename the directories below it; ` +
        `make it writable by its owner only (chmod go-w ${p}) or sticky (chmod +t ${p}), or choose another socket path`,
    );
  }
}

/**
 * Runs `bind` (which must bind synchronously, as net.Server#listen does for a path) with the
 * umask that gives a new socket exactly `mode`, so the socket never exists with a wider
 * mode. The umask is process-wide, so it is held only for this synchronous call.
 */
export function withSocketMode<T>(mode: number, bind: () => T): T {
  const previous = process.umask(~mode & 0o777);
  try {
    return bind();
  } finally {
    process.umask(previous);
  }
}
