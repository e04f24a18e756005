/** Bugs the fuzz tests found, each pinned by the smallest input that showed it. */
import { describe, it, expect } from 'vitest';
import { parseStatus } from '../../../src/proc/proc-reader.js';

describe('fuzz regressions', () => {
  it('parseStatus refuses an empty or non-numeric Uid/Gid line instead of returning NaN ids', () => {
    for (const text of ['Gid:\t\nUid:\t', 'Uid:\tx\t1\t1\t1\nGid:\t0\t0\t0\t0', 'Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 two', 'Uid:\t0\t-1\nGid:\t0\t0']) {
      expect(() => parseStatus(text, 7), text).toThrow(expect.objectContaining({ code: 'proc_malformed', message: expect.stringMatching(/^proc: \/proc\/7\/status has a malformed (Uid|Gid|Groups) line/) }));
    }
    expect(parseStatus('Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t\n', 7)).toMatchObject({ realUid: 1, uid: 2, realGid: 5, gid: 6, groups: [] });
  });
});
