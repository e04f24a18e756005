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
});
