import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProcReader, parseStatStartTime, parseStatus } from '../../../src/proc/proc-reader.js';

const STATUS = `Name:\tmy app
Umask:\t0022
State:\tS (sleeping)
Uid:\t1000\t1001\t1001\t1001
Gid:\t2000\t2001\t2001\t2001
Groups:\t4 24 27 
`;

describe('/proc parsing', () => {
  it('takes the effective uid and gid (second column), and every supplementary group', () => {
    expect(parseStatus(STATUS, 1)).toMatchObject({ uid: 1001, gid: 2001, realUid: 1000, realGid: 2000, groups: [4, 24, 27], name: 'my app' });
  });

  it('reads the start time after the last parenthesis so odd command names cannot shift fields', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[19] = '987654321';
    expect(parseStatStartTime(`42 (evil) 1 2 3 (x) ${fields.join(' ')}`, 42)).toBe(987654321n);
  });

  it('rejects a status file without Uid', () => {
    expect(() => parseStatus('Name:\tx\n', 7)).toThrow(/no Uid line/);
  });

  it('reads from a configurable root so fixture trees work', async () => {
    const root = mkdtempSync(join(tmpdir(), 'proc-'));
    mkdirSync(join(root, '77'));
    writeFileSync(join(root, '77', 'status'), STATUS);
    const r = new ProcReader(root);
    expect((await r.status(77)).uid).toBe(1001);
    await expect(r.status(78)).rejects.toMatchObject({ code: 'process_gone' });
  });

  it('reads this very process from the real /proc', async () => {
    const r = new ProcReader();
    const st = await r.status(process.pid);
    expect(st.uid).toBe(process.geteuid!());
    expect(await r.startTime(process.pid)).toBeGreaterThan(0n);
    expect(await r.exePath(process.pid)).toBe(process.execPath);
  });
});

describe('ProcReader.path', () => {
  it.each([
    ['/proc', '/proc/42/stat'],
    ['/host/proc/', '/host/proc/42/stat'],
    ['/host//proc', '/host/proc/42/stat'],
    ['fixtures/../proc', 'proc/42/stat'],
  ])('builds /proc/<pid>/<file> under the root %s as path.join would', (root, want) => {
    const r = new ProcReader(root);
    expect(r.path(42, 'stat')).toBe(want);
    expect(r.path(42)).toBe(want.slice(0, -'/stat'.length));
  });
});
