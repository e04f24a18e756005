import { describe, expect, it } from 'vitest';
import { jwtStillFresh, rotationTime, shouldRotate } from '../../../src/cache/rotation.js';

const H = 3_600_000;

describe('rotation timing', () => {
  it.each([
    { name: 'rotates at half-life by default', nb: 0, na: 2 * H, target: 0, at: H },
    { name: 'rotates earlier so that availability_target is always left', nb: 0, na: 30 * H, target: 24 * H, at: 6 * H },
    { name: 'keeps half-life when it is earlier than the target rule', nb: 0, na: 72 * H, target: 24 * H, at: 36 * H },
    { name: 'falls back to half-life when the SVID is shorter than the target', nb: 0, na: 10 * H, target: 24 * H, at: 5 * H },
  ])('$name', ({ nb, na, target, at }) => {
    expect(rotationTime(nb, na, target)).toBe(at);
    expect(shouldRotate(at - 1, nb, na, target)).toBe(false);
    expect(shouldRotate(at, nb, na, target)).toBe(true);
  });

  it('treats a JWT-SVID as fresh only before half of its lifetime', () => {
    expect(jwtStillFresh(149, 0, 300)).toBe(true);
    expect(jwtStillFresh(150, 0, 300)).toBe(false);
  });
});
