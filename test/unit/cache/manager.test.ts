import { describe, expect, it } from 'vitest';
import type { Authority, AuthoritySnapshot, RegistrationEntry, SignedJWTSVID, SignedX509SVID } from '../../../src/authority/types.js';
import { CacheManager } from '../../../src/cache/manager.js';
import { parseSelector } from '../../../src/cache/selectors.js';
import { makeEntry } from '../../helpers/entries.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const entry = makeEntry;

/** An in-memory Authority: the cache manager's only dependency, so this double is all the unit needs. */
class MemoryAuthority implements Authority {
  snap: AuthoritySnapshot;
  private listeners = new Set<(s: AuthoritySnapshot) => void>();
  x509Signed = 0;
  jwtSigned = 0;

  constructor(
    private readonly clock: FakeClock,
    entries: RegistrationEntry[],
    private readonly ttlMs = 60_000,
    private readonly backdateMs = 0,
  ) {
    this.snap = {
      bundle: { trustDomain: 'example.org', x509Authorities: [new Uint8Array([1])], jwtAuthorities: [], sequenceNumber: 1, refreshHintSeconds: 0 },
      federatedBundles: new Map(),
      entries,
    };
  }
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  snapshot(): AuthoritySnapshot {
    return this.snap;
  }
  status() {
    return { mode: 'embedded' as const, ready: true, agentSVID: undefined, lastSyncSuccess: 0, serverReachable: undefined };
  }
  onChange(l: (s: AuthoritySnapshot) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  setEntries(entries: RegistrationEntry[]): void {
    this.snap = { ...this.snap, entries };
    for (const l of this.listeners) l(this.snap);
  }
  async signX509SVID(_e: RegistrationEntry, csr: Uint8Array): Promise<SignedX509SVID> {
    expect(csr.length).toBeGreaterThan(50);
    this.x509Signed++;
    const now = this.clock.now();
    return { chain: [new Uint8Array([this.x509Signed])], serial: `s${this.x509Signed}`, notBefore: now - this.backdateMs, notAfter: now + this.ttlMs };
  }
  async signJWTSVID(e: RegistrationEntry, aud: readonly string[]): Promise<SignedJWTSVID> {
    this.jwtSigned++;
    const now = this.clock.now();
    return { token: `${e.spiffeId}|${aud.join(',')}|${this.jwtSigned}`, issuedAt: now, expiresAt: now + 300_000 };
  }
}

function setup(entries: RegistrationEntry[], opts: { x509Max?: number; jwtMax?: number; ttlMs?: number; backdateMs?: number } = {}) {
  const clock = new FakeClock();
  const authority = new MemoryAuthority(clock, entries, opts.ttlMs, opts.backdateMs);
  const cache = new CacheManager({
    authority,
    keyType: 'ec-p256',
    x509CacheMaxSize: opts.x509Max ?? 1000,
    jwtCacheMaxSize: opts.jwtMax ?? 1000,
    availabilityTargetMs: 0,
    clock,
    log: nullLogger,
  });
  cache.start();
  return { clock, authority, cache };
}

const flush = () => new Promise((r) => setTimeout(r, 50));

describe('cache manager', () => {
  it('signs an SVID on first use and serves the cached one until its rotation time', async () => {
    const { cache, authority } = setup([entry('a', ['unix:uid:1'])]);
    const sub = cache.subscribe([parseSelector('unix:uid:1')], () => {});
    const v1 = await sub.view();
    const v2 = await sub.view();
    expect(v1.identities.map((i) => i.serial)).toEqual(['s1']);
    expect(v2.identities[0]!.serial).toBe('s1');
    expect(authority.x509Signed).toBe(1);
    expect(v1.identities[0]!.keyPkcs8.length).toBeGreaterThan(100);
  });

  it('subscriptions share their methods (every open stream holds one for its life; no closures of its own)', async () => {
    const { cache } = setup([entry('a', ['unix:uid:1'])]);
    const a = cache.subscribe([parseSelector('unix:uid:1')], () => {});
    const b = cache.subscribe([parseSelector('unix:uid:2')], () => {});
    for (const m of ['view', 'entries', 'bundles', 'setSelectors', 'close'] as const) expect(a[m]).toBe(b[m]);
    expect(a.entries().map((e) => e.id)).toEqual(['a']);
    expect(b.entries()).toEqual([]);
    b.setSelectors([parseSelector('unix:uid:1')]);
    expect(b.selectors.map((s) => s.value)).toEqual(['uid:1']);
    expect((await b.view()).identities.map((i) => i.entry.id)).toEqual(['a']);
    a.close();
    b.close();
    expect(cache.subscriberCount).toBe(0);
  });

  it('rotates a subscribed SVID at half-life and tells the subscriber', async () => {
    const { cache, clock } = setup([entry('a', ['unix:uid:1'])]);
    let changes = 0;
    const sub = cache.subscribe([parseSelector('unix:uid:1')], () => changes++);
    await sub.view();
    clock.advance(29_999);
    await flush();
    expect(changes).toBe(0);
    clock.advance(1);
    await flush();
    expect(changes).toBe(1);
    expect((await sub.view()).identities[0]!.serial).toBe('s2');
  });

  it('counts half-life from issuance, so a backdated notBefore does not cause a rotation loop', async () => {
    const { cache, authority, clock } = setup([entry('a', ['unix:uid:1'])], { ttlMs: 4_000, backdateMs: 10_000 });
    const sub = cache.subscribe([parseSelector('unix:uid:1')], () => {});
    await sub.view();
    await sub.view();
    expect(authority.x509Signed).toBe(1);
    clock.advance(2_000);
    await flush();
    expect(authority.x509Signed).toBe(2);
  });

  it('withdraws an identity when its entry is removed, and signs anew when an entry changes', async () => {
    const { cache, authority } = setup([entry('a', ['unix:uid:1']), entry('b', ['unix:uid:1'])]);
    let changes = 0;
    const sub = cache.subscribe([parseSelector('unix:uid:1')], () => changes++);
    expect((await sub.view()).identities.map((i) => i.entry.id)).toEqual(['a', 'b']);
    authority.setEntries([entry('a', ['unix:uid:1'], { revisionNumber: 1, dnsNames: ['x'] })]);
    expect(changes).toBe(1);
    const v = await sub.view();
    expect(v.identities.map((i) => i.entry.id)).toEqual(['a']);
    expect(v.identities[0]!.serial).toBe('s3');
  });

  it('keeps rotating an SVID while any subscriber uses it, and stops once the last one closed', async () => {
    const { cache, clock, authority } = setup([entry('a', ['unix:uid:1'])]);
    const subs = Array.from({ length: 3 }, () => cache.subscribe([parseSelector('unix:uid:1')], () => {}));
    for (const s of subs) await s.view();
    subs[0]!.close();
    subs[0]!.close(); // twice: counted once
    subs[1]!.close();
    clock.advance(30_000);
    await flush();
    expect(authority.x509Signed).toBe(2);
    subs[2]!.close();
    clock.advance(30_000);
    await flush();
    expect(authority.x509Signed).toBe(2);
    expect(cache.cachedX509Count).toBe(0);
  });

  it('evicts unused SVIDs beyond x509_svid_cache_max_size but never one a subscriber uses', async () => {
    const entries = ['a', 'b', 'c'].map((id, i) => entry(id, [`unix:uid:${i}`]));
    const { cache } = setup(entries, { x509Max: 1 });
    const sub = cache.subscribe([parseSelector('unix:uid:0')], () => {});
    await sub.view();
    await cache.x509For([parseSelector('unix:uid:1')]);
    await cache.x509For([parseSelector('unix:uid:2')]);
    expect(cache.cachedX509Count).toBe(1);
    expect((await sub.view()).identities[0]!.serial).toBe('s1');
  });

  it('reuses a JWT-SVID per (SPIFFE ID, audience set) until half-life, whatever the audience order', async () => {
    const e = entry('a', ['unix:uid:1']);
    const { cache, clock, authority } = setup([e]);
    const t1 = await cache.jwtFor(e, ['x', 'y']);
    expect((await cache.jwtFor(e, ['y', 'x'])).token).toBe(t1.token);
    clock.advance(150_000);
    expect((await cache.jwtFor(e, ['x', 'y'])).token).not.toBe(t1.token);
    expect(authority.jwtSigned).toBe(2);
  });

  it('mints a fresh JWT-SVID every time for entries that ask for a jti', async () => {
    const e = entry('a', ['unix:uid:1'], { jwtSvidIncludeJti: true });
    const { cache } = setup([e]);
    expect((await cache.jwtFor(e, ['x'])).token).not.toBe((await cache.jwtFor(e, ['x'])).token);
  });

  it('bounds the JWT cache by jwt_svid_cache_max_size', async () => {
    const e = entry('a', ['unix:uid:1']);
    const { cache, authority } = setup([e], { jwtMax: 1 });
    await cache.jwtFor(e, ['x']);
    await cache.jwtFor(e, ['y']);
    await cache.jwtFor(e, ['x']);
    expect(authority.jwtSigned).toBe(3);
  });
});

describe('cache manager: rotation waves', () => {
  it('wakes only the subscribers whose SVIDs rotated', async () => {
    const { cache, clock } = setup([entry('a', ['unix:uid:1']), entry('b', ['unix:uid:2'])]);
    let aChanges = 0;
    let bChanges = 0;
    const subA = cache.subscribe([parseSelector('unix:uid:1')], () => aChanges++);
    await subA.view();
    clock.advance(10_000);
    const subB = cache.subscribe([parseSelector('unix:uid:2')], () => bChanges++);
    await subB.view();
    clock.advance(20_000); // a's half-life (30 s) is reached; b's (40 s) is not
    await flush();
    expect([aChanges, bChanges]).toEqual([1, 0]);
  });

  it('rotates SVIDs that fall due within a moment of each other in one wave', async () => {
    const { cache, clock, authority } = setup([entry('a', ['unix:uid:1']), entry('b', ['unix:uid:2'])]);
    await cache.x509For([parseSelector('unix:uid:1')]); // a signed at t0
    clock.advance(300);
    let changes = 0;
    const sub = cache.subscribe([parseSelector('unix:uid:1'), parseSelector('unix:uid:2')], () => changes++);
    await sub.view(); // b signed at t0 + 300 ms; a comes from the cache
    expect(authority.x509Signed).toBe(2);
    clock.advance(29_700); // a is due now, b in 300 ms: one wave rotates both
    await flush();
    expect(changes).toBe(1);
    expect(authority.x509Signed).toBe(4);
  });
});
