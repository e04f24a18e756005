/**
 * The JWT-SVID cache: LRU bounded by count and by bytes, keyed by a digest of the SPIFFE
 * ID and the audience set. The 3 MB-audience case measures the real heap of this
 * process with V8's own statistics, before and after, with a generous bound.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { SignedJWTSVID } from '../../../src/authority/types.js';
import { JWTCache, JWT_CACHE_MAX_BYTES as CODE_MAX_BYTES } from '../../../src/cache/jwt-cache.js';

/** The default byte budget, pinned (README: "at most 8 MiB of tokens, whatever its count limit"). */
const JWT_CACHE_MAX_BYTES = 8 * 1024 * 1024;

// A full collection before each reading, so only what the cache retains is measured.
setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const heapUsed = (): number => {
  gc();
  return getHeapStatistics().used_heap_size;
};

const T0 = Date.UTC(2026, 0, 1);
const svid = (token: string, issuedAt = T0, ttl = 300_000): SignedJWTSVID => ({ token, issuedAt, expiresAt: issuedAt + ttl });

describe('JWTCache', () => {
  it('keys by SPIFFE ID and audience set, whatever the order or repetition of the audience', () => {
    const k = JWTCache.key('spiffe://td/a', ['x', 'y']);
    expect(JWTCache.key('spiffe://td/a', ['y', 'x', 'y'])).toBe(k);
    expect(JWTCache.key('spiffe://td/b', ['x', 'y'])).not.toBe(k);
    expect(JWTCache.key('spiffe://td/a', ['x\u0000y'])).not.toBe(k);
    expect(JWTCache.key('spiffe://td/a', ['x,y'])).not.toBe(JWTCache.key('spiffe://td/a', ['x', 'y']));
    expect(k.length).toBeLessThan(64);
  });

  it('serves a token until half its lifetime, then drops it', () => {
    const c = new JWTCache({ maxCount: 10 });
    c.set('k', svid('t'));
    expect(c.get('k', T0 + 149_999)?.token).toBe('t');
    expect(c.get('k', T0 + 150_000)).toBeUndefined();
    expect(c.size).toBe(0);
    expect(c.bytes).toBe(0);
  });

  it('evicts the least recently used token beyond the count', () => {
    const c = new JWTCache({ maxCount: 2 });
    c.set('a', svid('A'));
    c.set('b', svid('B'));
    c.get('a', T0);
    c.set('c', svid('C'));
    expect(c.get('b', T0)).toBeUndefined();
    expect(c.get('a', T0)?.token).toBe('A');
    expect(c.get('c', T0)?.token).toBe('C');
  });

  it('evicts least recently used tokens until the bytes fit the budget', () => {
    const c = new JWTCache({ maxCount: 1000, maxBytes: 100_000 });
    for (let i = 0; i < 50; i++) c.set(`k${i}`, svid('x'.repeat(10_000) + i));
    expect(c.bytes).toBeLessThanOrEqual(100_000);
    expect(c.size).toBe(4);
    expect(c.get('k49', T0)).toBeDefined();
    expect(c.get('k0', T0)).toBeUndefined();
  });

  it('does not cache a token larger than the whole budget, and keeps the others', () => {
    const c = new JWTCache({ maxCount: 10, maxBytes: 10_000 });
    c.set('small', svid('s'));
    c.set('huge', svid('h'.repeat(20_000)));
    expect(c.get('huge', T0)).toBeUndefined();
    expect(c.get('small', T0)?.token).toBe('s');
  });

  it('keeps its accounting right when a key is replaced or cleared', () => {
    const c = new JWTCache({ maxCount: 10 });
    c.set('a', svid('x'.repeat(100)));
    const one = c.bytes;
    c.set('a', svid('y'.repeat(100)));
    expect(c.bytes).toBe(one);
    c.clear();
    expect(c.bytes).toBe(0);
  });

  it('holds no more than its byte budget of heap after 60 tokens with 3 MB audiences', () => {
    // 60 tokens carrying 3 MB audiences each, as one local caller could request them:
    // with only a count bound (1000) they would all stay, ~570 MB.
    const c = new JWTCache({ maxCount: 1000 });
    const before = heapUsed();
    for (let i = 0; i < 60; i++) {
      const aud = `${i}-${'a'.repeat(3 * 1024 * 1024)}`;
      // A token's payload is the base64url of its claims, audience included.
      const token = `eyJhbGciOiJFUzI1NiJ9.${Buffer.from(JSON.stringify({ aud: [aud] })).toString('base64url')}.sig`;
      c.set(JWTCache.key('spiffe://td/a', [aud]), svid(token));
    }
    expect(CODE_MAX_BYTES).toBe(JWT_CACHE_MAX_BYTES);
    expect(c.bytes).toBeLessThanOrEqual(JWT_CACHE_MAX_BYTES);
    // Generous: the budget plus slack, far below the ~570 MB a count bound alone allows.
    expect(heapUsed() - before).toBeLessThan(JWT_CACHE_MAX_BYTES + 32 * 1024 * 1024);
    expect(c.size).toBeLessThanOrEqual(1);
  });
});
