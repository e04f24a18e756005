import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../src/sdk/backoff.js';

describe('Backoff', () => {
  it('starts at 1 s, doubles, and stays at 30 s', () => {
    const b = new Backoff();
    expect(Array.from({ length: 8 }, () => b.next())).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('starts over after reset', () => {
    const b = new Backoff();
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(1000);
  });
});
