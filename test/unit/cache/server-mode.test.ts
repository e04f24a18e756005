/**
 * The cache manager's behaviour that matters with a SPIRE server: prefetching SVIDs up to the
 * cache size, serving a due-but-valid SVID while the authority cannot sign (and retrying without
 * spinning), the cached JWT-SVID fallback, and re-signing SVIDs of a tainted authority in
 * spire-agent's batches. The authority is an in-memory double whose signing can be switched off.
 */
import { describe, expect, it } from 'vitest';
import type { Authority, AuthoritySnapshot, RegistrationEntry, SignedJWTSVID, SignedX509SVID } from '../../../src/authority/types.js';
import { CacheManager } from '../../../src/cache/manager.js';
import { parseSelector } from '../../../src/cache/selectors.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { makeEntry } from '../../helpers/entries.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { TestCA } from '../../helpers/test-ca.js';

class FlakyAuthority implements Authority {
  snap: AuthoritySnapshot;
  down = false;
  x509Signed = 0;
  jwtSigned = 0;
  /** DER of the CA whose "signature" the fake SVIDs carry (chain = [that CA's DER]), so taint checks can match it. */
  issuer: Uint8Array = new Uint8Array([1]);
  private listeners = new Set<(s: AuthoritySnapshot) => void>();

  constructor(
    private readonly clock: FakeClock,
    entries: RegistrationEntry[],
  ) {
    this.snap = { bundle: { trustDomain: 'example.org', x509Authorities: [], jwtAuthorities: [], sequenceNumber: 1, refreshHintSeconds: 0 }, federatedBundles: new Map(), entries };
  }
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  snapshot(): AuthoritySnapshot {
    return this.snap;
  }
  status() {
    return { mode: 'server' as const, ready: true, agentSVID: undefined, lastSyncSuccess: 0, serverReachable: !this.down };
  }
  onChange(l: (s: AuthoritySnapshot) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  publish(snap: AuthoritySnapshot): void {
    this.snap = snap;
    for (const l of this.listeners) l(snap);
  }
  async signX509SVID(): Promise<SignedX509SVID> {
    if (this.down) throw new Error('server unreachable');
    this.x509Signed++;
    const now = this.clock.now();
    return { chain: [this.issuer], serial: `s${this.x509Signed}`, notBefore: now, notAfter: now + 60_000 };
  }
  async signJWTSVID(e: RegistrationEntry): Promise<SignedJWTSVID> {
    if (this.down) throw new Error('server unreachable');
    this.jwtSigned++;
    const now = this.clock.now();
    return { token: `t${this.jwtSigned}.${e.id}`, issuedAt: now, expiresAt: now + 20_000 };
  }
}

function setup(entries: RegistrationEntry[], opts: { x509Max?: number; prefetch?: boolean; hitTimeoutMs?: number; deferPrefetch?: boolean } = {}) {
  const clock = new FakeClock();
  const authority = new FlakyAuthority(clock, entries);
  const cache = new CacheManager({
    authority,
    keyType: 'ec-p256',
    x509CacheMaxSize: opts.x509Max ?? 1000,
    jwtCacheMaxSize: 1000,
    availabilityTargetMs: 0,
    prefetchX509: opts.prefetch ?? true,
    jwtCacheHitTimeoutMs: opts.hitTimeoutMs,
    clock,
    log: nullLogger,
  });
  cache.start({ deferPrefetch: opts.deferPrefetch });
  return { clock, authority, cache };
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 10));
};

describe('cache manager with a server', () => {
  it('prefetches SVIDs for entries nobody asked for yet, up to x509_svid_cache_max_size', async () => {
    const entries = Array.from({ length: 5 }, (_, i) => makeEntry(`e${i}`, [`unix:uid:${i}`]));
    const { cache, authority } = setup(entries, { x509Max: 3 });
    await settle();
    expect(cache.cachedX509Count).toBe(3);
    expect(authority.x509Signed).toBe(3);
  });

  it("retries a prefetch that failed 5 s later, with no entry change or rotation to prompt it (as spire-agent's sync would)", async () => {
    const entries = [makeEntry('a', ['unix:uid:1']), makeEntry('b', ['unix:uid:2'])];
    const { cache, authority, clock } = setup(entries, { deferPrefetch: true });
    authority.down = true;
    cache.startPrefetch();
    await settle();
    expect(cache.cachedX509Count).toBe(0);
    authority.down = false;
    clock.advance(4_000);
    await settle();
    expect(cache.cachedX509Count, 'not before the retry is due').toBe(0);
    clock.advance(1_000);
    await settle();
    expect(cache.cachedX509Count).toBe(2);
    expect(authority.x509Signed).toBe(2);
    cache.close();
  });

  it('reads a cache size of 0 as spire-agent does: its default of 1000', async () => {
    const entries = Array.from({ length: 5 }, (_, i) => makeEntry(`e${i}`, [`unix:uid:${i}`]));
    const { cache } = setup(entries, { x509Max: 0 });
    await settle();
    expect(cache.cachedX509Count).toBe(5);
  });

  it('moves a prefetch signing that a workload now waits for ahead of the wave; a fresh signing is not urgent', async () => {
    const entries = [makeEntry('a', ['unix:uid:1']), makeEntry('b', ['unix:uid:2'])];
    const { cache, authority } = setup(entries, { prefetch: true });
    const expedited: string[] = [];
    const urgentFlags: boolean[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const sign = authority.signX509SVID.bind(authority);
    authority.signX509SVID = async (...args: unknown[]) => {
      urgentFlags.push((args[2] as Parameters<Authority['signX509SVID']>[2])?.urgent ?? false);
      await held;
      return sign();
    };
    (authority as Authority).expediteX509SVID = (id) => {
      expedited.push(id);
      return true;
    };
    await settle(); // the prefetch of a and b is with the authority, held
    const view = cache.x509For([parseSelector('unix:uid:1')]);
    expect(expedited).toEqual(['a']);
    release();
    expect((await view).identities).toHaveLength(1);
    expect(urgentFlags).toEqual([false, false]);
  });

  it('signs once more, urgently, for a workload whose entry is already in a wave call; keeps the first SVID', async () => {
    const entries = [makeEntry('a', ['unix:uid:1']), makeEntry('b', ['unix:uid:2'])];
    const { cache, authority } = setup(entries, { prefetch: true });
    const urgentFlags: boolean[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const sign = authority.signX509SVID.bind(authority);
    authority.signX509SVID = async (...args: unknown[]) => {
      const urgent = (args[2] as Parameters<Authority['signX509SVID']>[2])?.urgent ?? false;
      urgentFlags.push(urgent);
      if (!urgent) await held; // the wave's call: 500 CSRs with the server
      return sign();
    };
    // The CSRs already left the queue: nothing to move ahead.
    (authority as Authority).expediteX509SVID = () => false;
    await settle();
    expect(urgentFlags).toEqual([false, false]);
    const first = cache.x509For([parseSelector('unix:uid:1')]);
    const again = cache.x509For([parseSelector('unix:uid:1')]); // a second caller shares the urgent signing
    const [v1, v2] = await Promise.all([first, again]);
    expect(urgentFlags).toEqual([false, false, true]);
    expect(v1.identities[0]!.serial).toBe('s1');
    expect(v2.identities[0]!.serial).toBe('s1');
    release();
    await settle();
    // The wave's SVID for a came later and was dropped: the cache still serves the urgent one, once.
    expect(authority.x509Signed).toBe(3);
    expect(cache.cachedX509Count).toBe(2);
    expect((await cache.x509For([parseSelector('unix:uid:1')])).identities[0]!.serial).toBe('s1');
  });

  it('with deferPrefetch, signs ahead only after startPrefetch (the agent opens its sockets first)', async () => {
    const entries = Array.from({ length: 3 }, (_, i) => makeEntry(`e${i}`, [`unix:uid:${i}`]));
    const { cache, authority } = setup(entries, { deferPrefetch: true });
    await settle();
    expect(authority.x509Signed).toBe(0);
    cache.startPrefetch();
    await settle();
    expect(authority.x509Signed).toBe(3);
    expect(cache.cachedX509Count).toBe(3);
  });

  it('does not prefetch for the embedded authority', async () => {
    const { cache } = setup([makeEntry('a', ['unix:uid:1'])], { prefetch: false });
    await settle();
    expect(cache.cachedX509Count).toBe(0);
  });

  it('serves a new workload from the cache while the server is down', async () => {
    const { cache, authority } = setup([makeEntry('a', ['unix:uid:1'])]);
    await settle();
    authority.down = true;
    const view = await cache.x509For([parseSelector('unix:uid:1')]);
    expect(view.identities.map((i) => i.serial)).toEqual(['s1']);
  });

  it('keeps serving a due SVID while it is valid, retries every 5 s without spinning, and rotates once the server is back', async () => {
    const { cache, authority, clock } = setup([makeEntry('a', ['unix:uid:1'])]);
    const sub = cache.subscribe([parseSelector('unix:uid:1')], () => {});
    expect((await sub.view()).identities[0]!.serial).toBe('s1');
    authority.down = true;
    clock.advance(31_000); // past half of the 60 s lifetime
    await settle();
    const during = await sub.view();
    expect(during.identities[0]!.serial).toBe('s1');
    // Timers pending: one retry, not a loop of immediate ones.
    expect(clock.pendingTimers).toBeLessThanOrEqual(2);
    authority.down = false;
    clock.advance(5_000);
    await settle();
    expect((await sub.view()).identities[0]!.serial).toBe('s2');
    sub.close();
  });

  it('fails once the cached SVID has expired and the server is still down', async () => {
    const { cache, authority, clock } = setup([makeEntry('a', ['unix:uid:1'])]);
    await settle();
    authority.down = true;
    clock.advance(61_000);
    await expect(cache.x509For([parseSelector('unix:uid:1')])).rejects.toMatchObject({ code: 'sign_failed' });
  });

  it('answers with the cached JWT-SVID when renewal fails and it is still valid, and fails once it has expired', async () => {
    const e = makeEntry('a', ['unix:uid:1']);
    const { cache, authority, clock } = setup([e], { prefetch: false });
    const first = await cache.jwtFor(e, ['aud']);
    authority.down = true;
    clock.advance(12_000); // past half of 20 s
    expect((await cache.jwtFor(e, ['aud'])).token).toBe(first.token);
    clock.advance(9_000);
    await expect(cache.jwtFor(e, ['aud'])).rejects.toThrow('server unreachable');
  });

  it('with jwt_svid_cache_hit_timeout, answers from the cache when the server is slower than the timeout', async () => {
    const e = makeEntry('a', ['unix:uid:1']);
    const { cache, authority, clock } = setup([e], { prefetch: false, hitTimeoutMs: 5_000 });
    const first = await cache.jwtFor(e, ['aud']);
    clock.advance(12_000);
    // A server that never answers.
    authority.signJWTSVID = () => new Promise(() => {});
    const pending = cache.jwtFor(e, ['aud']);
    await settle();
    clock.advance(5_000);
    expect((await pending).token).toBe(first.token);
  });

  it('with jwt_svid_cache_hit_timeout too, answers from the cache at once while the server is known not to answer, and renews behind', async () => {
    const e = makeEntry('a', ['unix:uid:1']);
    const { cache, authority, clock } = setup([e], { prefetch: false, hitTimeoutMs: 5_000 });
    const first = await cache.jwtFor(e, ['aud']);
    clock.advance(12_000);
    // Calls have been timing out (status says unreachable) and this one would too.
    authority.down = true;
    let asked = 0;
    let answer!: (s: SignedJWTSVID) => void;
    authority.signJWTSVID = () => (asked++, new Promise((r) => (answer = r)));
    expect((await cache.jwtFor(e, ['aud'])).token).toBe(first.token);
    expect((await cache.jwtFor(e, ['aud'])).token).toBe(first.token);
    expect(asked, 'one renewal behind, shared').toBe(1);
    // Its answer, however late, is kept for the next caller.
    answer({ token: 'fresh', issuedAt: clock.now(), expiresAt: clock.now() + 20_000 });
    await settle();
    expect((await cache.jwtFor(e, ['aud'])).token).toBe('fresh');
  });

  it('re-signs SVIDs of a newly tainted authority in batches of 100 every 5 s, the first after 5 s', async () => {
    const ca = await TestCA.create('example.org');
    const entries = Array.from({ length: 150 }, (_, i) => makeEntry(`e${String(i).padStart(3, '0')}`, [`unix:uid:${i}`]));
    const { cache, authority, clock } = setup(entries);
    // A self-signed CA "signs" itself: chain [ca] is issued by ca.
    authority.issuer = ca.der();
    await settle();
    expect(authority.x509Signed).toBe(150);
    authority.issuer = new Uint8Array([2]);
    authority.publish({ ...authority.snap, bundle: { ...authority.snap.bundle, x509Authorities: [ca.der()], taintedX509Authorities: [ca.der()] } });
    await settle();
    expect(authority.x509Signed).toBe(150);
    clock.advance(5_000);
    await settle();
    expect(authority.x509Signed).toBe(250);
    clock.advance(5_000);
    await settle();
    expect(authority.x509Signed).toBe(300);
    // The same tainted authority seen again on the next sync is not processed twice.
    authority.publish({ ...authority.snap });
    clock.advance(10_000);
    await settle();
    expect(authority.x509Signed).toBe(300);
    expect(cache.cachedX509Count).toBe(150);
  });
});
