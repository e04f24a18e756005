import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir, readFileIfExists, writeFileAtomic } from '../../../src/storage/atomic-file.js';
import { runCompiledAs } from '../../helpers/privileges.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes the content with mode 0600 by default', async () => {
    const p = join(dir, 'key.pem');
    await writeFileAtomic(p, 'secret');
    expect(await readFile(p, 'utf8')).toBe('secret');
    expect((await stat(p)).mode & 0o777).toBe(0o600);
  });

  it('replaces an existing file and applies the requested mode even if the old file was wider', async () => {
    const p = join(dir, 'svid.pem');
    await writeFile(p, 'old', { mode: 0o644 });
    await writeFileAtomic(p, new Uint8Array([1, 2, 3]), 0o640);
    expect([...(await readFile(p))]).toEqual([1, 2, 3]);
    expect((await stat(p)).mode & 0o777).toBe(0o640);
  });

  it('leaves no temporary files behind after many writes', async () => {
    const p = join(dir, 'f');
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeFileAtomic(p, `v${i}`)));
    expect(await readdir(dir)).toEqual(['f']);
    expect(await readFile(p, 'utf8')).toMatch(/^v\d+$/);
  });

  it('fails without creating anything when the directory does not exist', async () => {
    await expect(writeFileAtomic(join(dir, 'missing', 'f'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('readFileIfExists', () => {
  it('returns undefined for a missing file and the bytes for an existing one', async () => {
    expect(await readFileIfExists(join(dir, 'nope'))).toBeUndefined();
    await writeFile(join(dir, 'yes'), 'hi');
    expect((await readFileIfExists(join(dir, 'yes')))?.toString()).toBe('hi');
  });
});

describe('ensurePrivateDir', () => {
  it('creates nested directories and makes the leaf exactly 0700', async () => {
    const p = join(dir, 'a', 'b');
    await ensurePrivateDir(p);
    expect((await stat(p)).mode & 0o777).toBe(0o700);
  });

  // A Kubernetes emptyDir is made by the kubelet as root; the agent (uid 1000 in deploy/kubernetes)
  // cannot chmod it. Needs root to set that up, as the DaemonSet test does for real.
  it.skipIf(process.getuid?.() !== 0)('takes a directory of another owner that no other uid may write in, and refuses a world-writable one with what to do', async () => {
    await chmod(dir, 0o755);
    const closed = join(dir, 'closed');
    const open = join(dir, 'open');
    await mkdir(closed, { mode: 0o755 });
    await mkdir(open);
    await chmod(open, 0o2777); // an emptyDir with fsGroup: setgid, writable by all
    const body = (p: string) =>
      `const { ensurePrivateDir } = await load('storage/atomic-file.js');
       try { await ensurePrivateDir(${JSON.stringify(p)}); out({ ok: true }); } catch (e) { out({ code: e.code, message: e.message }); }`;
    const as = { uid: 4242, gid: 4242, caps: [] };
    expect(await runCompiledAs(as, body(closed))).toEqual({ ok: true });
    expect(await runCompiledAs(as, body(open))).toMatchObject({
      code: 'data_dir_unsafe',
      message: expect.stringMatching(/may be written by other users.*chown it to the agent's uid/),
    });
    expect((await stat(open)).mode & 0o7777).toBe(0o2777);
  });
});
