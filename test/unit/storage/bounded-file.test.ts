import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBoundedFile, readBoundedFileSync } from '../../../src/storage/bounded-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bounded-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const opts = { maxBytes: 1024, what: 'test file' };

describe('reading an input file', () => {
  it('reads a regular file within the limit, exactly at the limit too', async () => {
    const f = join(dir, 'ok');
    await writeFile(f, 'x'.repeat(1024));
    expect(await readBoundedFile(f, opts)).toHaveLength(1024);
    expect(readBoundedFileSync(f, opts)).toHaveLength(1024);
    await writeFile(f, 'héllo');
    expect(await readBoundedFile(f, opts)).toBe('héllo');
  });

  it('refuses a file over the limit, naming the file and the limit', async () => {
    const f = join(dir, 'big');
    await writeFile(f, 'x'.repeat(1025));
    const expected = { code: 'input_too_large', message: `input: test file ${f} is larger than the limit of 1 KiB; make it smaller` };
    await expect(readBoundedFile(f, opts)).rejects.toMatchObject(expected);
    expect(() => readBoundedFileSync(f, opts)).toThrow(expect.objectContaining(expected));
  });

  it('refuses a FIFO at once instead of waiting for a writer', async () => {
    const f = join(dir, 'fifo');
    execFileSync('mkfifo', [f]);
    // A FIFO with no writer blocks its reader for ever: returning at all is the proof.
    await expect(readBoundedFile(f, opts)).rejects.toMatchObject({ code: 'input_not_regular', message: expect.stringContaining(`${f} is a FIFO (named pipe), not a regular file`) });
    expect(() => readBoundedFileSync(f, opts)).toThrow(/FIFO/);
  });

  it('refuses directories and character devices', async () => {
    const d = join(dir, 'sub');
    await mkdir(d);
    await expect(readBoundedFile(d, opts)).rejects.toMatchObject({ code: 'input_not_regular', message: expect.stringContaining('is a directory') });
    // /dev/zero never ends: reading it whole would exhaust memory.
    await expect(readBoundedFile('/dev/zero', opts)).rejects.toMatchObject({ code: 'input_not_regular', message: expect.stringContaining('character device') });
  });

  it('says when the file does not exist', async () => {
    await expect(readBoundedFile(join(dir, 'nope'), opts)).rejects.toMatchObject({ code: 'input_not_found' });
    expect(() => readBoundedFileSync(join(dir, 'nope'), opts)).toThrow(expect.objectContaining({ code: 'input_not_found' }));
  });
});
