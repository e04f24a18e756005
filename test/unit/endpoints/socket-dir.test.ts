/**
 * The socket directory rules on real directories under a temporary base (any user can run
 * these; the owner cases need root to chown, and are left out otherwise).
 */
import { chmod, chown, lchown, lstat, mkdir, mkdtemp, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareSocketDir, SocketDirError, withSocketMode } from '../../../src/endpoints/socket-dir.js';
import { requireTool } from '../../helpers/require-tool.js';

const euid = process.geteuid?.() ?? 0;
const notRoot = requireTool('root', euid === 0, 'one test chowns directories to another user');

describe('prepareSocketDir', () => {
  let base: string;
  beforeEach(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'socket-dir-')));
    await chmod(base, 0o755);
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const refusal = async (socketPath: string): Promise<SocketDirError> => {
    const err = await prepareSocketDir(socketPath, { euid, what: 'Workload API' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SocketDirError);
    expect((err as SocketDirError).code).toBe('socket_dir_unsafe');
    return err as SocketDirError;
  };

  it('creates missing directories with mode 0755 under a sticky world-writable parent, and returns the resolved directory', async () => {
    const sticky = join(base, 'tmp');
    await mkdir(sticky);
    await chmod(sticky, 0o1777);
    await symlink(sticky, join(base, 'tmp-link'));
    const dir = await prepareSocketDir(join(base, 'tmp-link', 'spire-agent', 'public', 'api.sock'), { euid });
    expect(dir).toBe(join(sticky, 'spire-agent', 'public'));
    for (const d of [join(sticky, 'spire-agent'), dir]) {
      const st = await stat(d);
      expect({ uid: st.uid, mode: st.mode & 0o7777 }).toEqual({ uid: euid, mode: 0o755 });
    }
  });

  it('accepts an existing directory writable by its owner only, again and again', async () => {
    await mkdir(join(base, 'public'), { mode: 0o700 });
    for (let i = 0; i < 2; i++) expect(await prepareSocketDir(join(base, 'public', 'api.sock'), { euid })).toBe(join(base, 'public'));
  });

  for (const mode of [0o777, 0o775, 0o757, 0o1777]) {
    it(`refuses a socket directory with mode 0${mode.toString(8)}, naming it, its owner and mode`, async () => {
      const dir = join(base, 'public');
      await mkdir(dir);
      await chmod(dir, mode);
      const err = await refusal(join(dir, 'api.sock'));
      expect(err.message).toContain(`${dir} (owner uid ${euid}, mode 0${mode.toString(8)})`);
      expect(err.message).toMatch(/writable by users other than its owner.*chmod go-w/);
    });
  }

  it('refuses a parent writable by others without the sticky bit', async () => {
    await mkdir(join(base, 'open'));
    await chmod(join(base, 'open'), 0o777);
    const err = await refusal(join(base, 'open', 'public', 'api.sock'));
    expect(err.message).toMatch(/open \(owner uid \d+, mode 0777\) is a parent .* without the sticky bit/);
  });

  it('refuses a path through a file', async () => {
    await writeFile(join(base, 'file'), '');
    const err = await refusal(join(base, 'file', 'api.sock'));
    expect(err.message).toMatch(/is the directory of the Workload API socket .* but not a directory/);
  });

  it('refuses a symlink whose target is missing, with a message naming it', async () => {
    await symlink(join(base, 'nowhere'), join(base, 'dangling'));
    const err = await refusal(join(base, 'dangling', 'api.sock'));
    expect(err.message).toMatch(/cannot resolve .*dangling/);
  });

  it.skipIf(notRoot)('refuses a socket directory, a parent or a symlink owned by another non-root user', async () => {
    const theirs = join(base, 'theirs');
    await mkdir(join(theirs, 'public'), { recursive: true, mode: 0o755 });
    await chown(theirs, 65534, 65534);
    expect((await refusal(join(theirs, 'public', 'api.sock'))).message).toMatch(/theirs \(owner uid 65534, mode 0755\) is a parent .* belongs to another user/);
    await chown(theirs, 0, 0);
    await chown(join(theirs, 'public'), 65534, 65534);
    expect((await refusal(join(theirs, 'public', 'api.sock'))).message).toMatch(/public \(owner uid 65534, mode 0755\) is the directory .* belongs to another user/);
    await chown(join(theirs, 'public'), 0, 0);
    await symlink(join(theirs, 'public'), join(base, 'their-link'));
    await lchown(join(base, 'their-link'), 65534, 65534);
    expect((await refusal(join(base, 'their-link', 'api.sock'))).message).toMatch(/their-link \(owner uid 65534.* belongs to another user/);
  });
});

describe('withSocketMode', () => {
  it('binds a socket with exactly the mode asked for, whatever the umask, and restores the umask', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'socket-mode-'));
    const before = process.umask(0o077);
    try {
      for (const mode of [0o777, 0o770]) {
        const server = createServer();
        const path = join(dir, `s-${mode.toString(8)}.sock`);
        await new Promise<void>((resolve) => withSocketMode(mode, () => server.listen(path, resolve)));
        expect((await lstat(path)).mode & 0o777).toBe(mode);
        expect(process.umask(0o077)).toBe(0o077);
        await new Promise((r) => server.close(r));
      }
    } finally {
      process.umask(before);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
