import { open, rename, unlink, readFile, mkdir, chmod, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, basename, join } from 'node:path';
import { StorageError } from './errors.js';

/** For crash tests only: a point to stop at between the temp file's fsync and the rename. */
export interface AtomicWriteHooks {
  readonly beforeRename?: () => Promise<void>;
}

/**
 * Replace `path` with `data` so that a crash at any moment leaves either the old or the
 * new content: write a temp file in the same directory (same filesystem, so rename is
 * atomic), fsync it, rename over the target, then fsync the directory so the rename
 * itself survives power loss.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, hooks: AtomicWriteHooks = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let renamed = false;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      // The umask may have narrowed or (never) widened the mode; make it exact.
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await hooks.beforeRename?.();
    await rename(tmp, path);
    renamed = true;
    await fsyncDir(dir);
  } finally {
    if (!renamed) await unlink(tmp).catch(() => {});
  }
}

/** The file's content, or undefined when it does not exist. Other errors propagate. */
export async function readFileIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * mkdir -p with an exact mode on the leaf (mkdir's mode is subject to the umask).
 *
 * A directory made by someone else (a Kubernetes emptyDir or hostPath, created by the kubelet as
 * root) cannot be chmod-ed by a non-root agent. It is still safe when no other uid may write in it
 * (our files are 0600, so only replacing them matters); a directory others may write in is refused,
 * because another uid could swap the agent's key or SVID under it.
 */
export async function ensurePrivateDir(path: string, mode = 0o700): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  try {
    await chmod(path, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    const st = await stat(path);
    if ((st.mode & 0o022) === 0) return;
    throw new StorageError(
      'data_dir_unsafe',
      `storage: ${path} (owner uid ${st.uid}, mode 0${(st.mode & 0o7777).toString(8)}) may be written by other users, and this agent (uid ${process.geteuid?.() ?? '?'}) may not chmod it: chown it to the agent's uid (in Kubernetes, an init container as deploy/kubernetes's fsgroupfix does) or choose a data_dir the agent owns`,
      { cause: err },
    );
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Some filesystems refuse fsync on a directory; the rename already happened.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await fh?.close();
  }
}
