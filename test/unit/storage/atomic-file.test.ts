import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, readdir, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir, readFileIfExists, writeFileAtomic } from '../../../src/storage/atomic-file.js';

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
});
