/**
 * UserDb re-reads /etc/passwd and /etc/group when they change, but checks for a change at
 * most once per second, and concurrent lookups share one check (real files, injected time).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as fsp from 'node:fs/promises';
import { UserDb } from '../../../../src/attestation/workload/unix/user-db.js';

vi.mock('node:fs/promises', async (orig) => {
  const real = await orig<typeof import('node:fs/promises')>();
  return { ...real, stat: vi.fn(real.stat) };
});

let dir: string;
let now: number;
let db: UserDb;

function writePasswd(name: string): void {
  const p = join(dir, 'passwd');
  writeFileSync(p, `${name}:x:1301:1302::/home/${name}:/bin/sh\n`);
  // A distinct mtime, whatever the file system's timestamp granularity.
  const m = statSync(p).mtimeMs / 1000 + Math.random() * 1000;
  utimesSync(p, m, m);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'user-db-'));
  writePasswd('alice');
  writeFileSync(join(dir, 'group'), 'alicegrp:x:1302:\n');
  now = 0;
  db = new UserDb(join(dir, 'passwd'), join(dir, 'group'), () => now);
  vi.mocked(fsp.stat).mockClear();
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('UserDb', () => {
  it('sees an edited passwd file within a second, not before', async () => {
    expect(await db.userName(1301)).toBe('alice');
    writePasswd('bob');
    now = 999;
    expect(await db.userName(1301)).toBe('alice');
    now = 1000;
    expect(await db.userName(1301)).toBe('bob');
    expect(await db.groupName(1302)).toBe('alicegrp');
  });

  it('stats each file once for a burst of concurrent lookups', async () => {
    const names = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? db.userName(1301) : db.groupName(1302))));
    expect(names.filter((n) => n === 'alice')).toHaveLength(25);
    expect(names.filter((n) => n === 'alicegrp')).toHaveLength(25);
    expect(vi.mocked(fsp.stat)).toHaveBeenCalledTimes(2);
  });

  it('gives no names while a file is missing, and finds them once it appears', async () => {
    rmSync(join(dir, 'passwd'));
    expect(await db.userName(1301)).toBeUndefined();
    writePasswd('carol');
    now = 1500;
    expect(await db.userName(1301)).toBe('carol');
  });

  it('gives no names for a FIFO or an oversized file in place of passwd, without hanging, and recovers', async () => {
    const p = join(dir, 'passwd');
    rmSync(p);
    execFileSync('mkfifo', [p]);
    expect(await db.userName(1301)).toBeUndefined();
    rmSync(p);
    writeFileSync(p, `alice:x:1301:1302::/home/alice:/bin/sh\n${'#'.repeat(17 << 20)}\n`);
    now = 1000;
    expect(await db.userName(1301)).toBeUndefined();
    writePasswd('dave');
    now = 2000;
    expect(await db.userName(1301)).toBe('dave');
  });
});
