import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadLibc } from '../../../src/proc/libc.js';
import { SyscallError } from '../../../src/proc/errors.js';

describe('loadLibc', () => {
  it('returns the same bindings on every call in a process instead of throwing on the second', () => {
    const a = loadLibc();
    const b = loadLibc();
    expect(b).toBe(a);
  });

  it('names the errno when a call fails', () => {
    const libc = loadLibc();
    // fd 1_000_000 is never open, so getsockopt fails with EBADF.
    let caught: unknown;
    try {
      libc.peerCred(1_000_000);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect(caught).toMatchObject({ code: 'syscall_failed' });
    expect((caught as Error).message).toMatch(/^libc: getsockopt\(SO_PEERCRED\) failed on fd 1000000: EBADF \(errno 9\)$/);
  });

  it('makes a socketpair whose ends are open descriptors', () => {
    const libc = loadLibc();
    const [a, b] = libc.socketpair();
    expect(a).toBeGreaterThan(2);
    expect(b).toBeGreaterThan(2);
    libc.close(a);
    libc.close(b);
  });

  it('tells a running process from one that exited through its pidfd, a zombie counting as exited', async () => {
    const libc = loadLibc();
    // sh starts a short sleep and becomes a long one, which never reaps the short one: a zombie.
    const holder = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number(await new Promise<string>((r) => holder.stdout!.once('data', (c: Buffer) => r(c.toString()))));
    const pidfd = libc.pidfdOpen(pid);
    const holderFd = libc.pidfdOpen(holder.pid!);
    try {
      expect(pidfd).toBeGreaterThan(2);
      expect(libc.pidfdExited(pidfd)).toBe(false);
      const deadline = Date.now() + 10_000;
      while (!/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) {
        if (Date.now() > deadline) throw new Error('the short sleep never became a zombie');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(libc.pidfdExited(pidfd)).toBe(true);
      expect(libc.pidfdExited(holderFd)).toBe(false);
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
      expect(libc.pidfdExited(holderFd)).toBe(true);
    } finally {
      libc.close(pidfd);
      libc.close(holderFd);
      holder.kill('SIGKILL');
    }
  });

  it('throws, rather than answering "exited", when the pidfd is not an open descriptor', () => {
    expect(() => loadLibc().pidfdExited(1_000_000)).toThrow(/^libc: poll on pidfd 1000000: not an open descriptor/);
  });
});
