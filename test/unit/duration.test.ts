import { describe, expect, it } from 'vitest';
import { formatGoDuration, parseGoDuration } from '../../src/duration.js';

describe('parseGoDuration reads Go time.ParseDuration strings, without a sign, in milliseconds', () => {
  it.each([
    ['0', 0],
    ['30s', 30_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['250ms', 250],
    ['500us', 0.5],
    ['500µs', 0.5],
    ['1000000ns', 1],
  ])('%s is %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms);
  });

  it.each(['', '30', '1d', '-1s', ' 1s', '1s ', 's'])('refuses %j', (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });
});

describe('formatGoDuration writes what Go time.Duration.String() writes', () => {
  it.each([
    [-1_500_000_000n, '-1.5s'],
    [60_000_000_000n, '1m0s'],
    [3_600_000_000_000n, '1h0m0s'],
  ])('%d ns is %s', (ns, text) => {
    expect(formatGoDuration(ns)).toBe(text);
  });
});
