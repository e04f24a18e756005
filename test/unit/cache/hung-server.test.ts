/**
 * Workloads while the SPIRE server hangs (accepts calls, never answers): the cache manager over the
 * real ServerAuthority and a FAKE in-process server (test/helpers/fake-spire-server.ts) whose
 * hang() holds every call. A valid cached SVID or JWT-SVID is served at once although a renewal is
 * stuck with the server; the renewal completes when the server answers again and reaches the open
 * stream. The real spire-server, stopped with SIGSTOP: test/interop/server/hung-server.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ServerAuthority } from '../../../src/authority/server/server-authority.js';
import { CacheManager } from '../../../src/cache/manager.js';
import { parseSelector } from '../../../src/cache/selectors.js';
import { systemClock } from '../../../src/clock.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { FakeSession, FakeSpireServer } from '../../helpers/fake-spire-server.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await p;
  return { ms: performance.now() - t0, value };
}

/**
 * `availabilityTargetMs` makes a 10 s SVID due 1 s after it is issued (it must keep 8 s of
 * validity), so the test reaches "past rotation time, still valid" quickly.
 */
async function setup(opts: { svidTtlMs?: number; jwtTtlS?: number; callTimeoutMs?: number; availabilityTargetMs?: number } = {}) {
  const server = await FakeSpireServer.start();
  server.svidTtlMs = opts.svidTtlMs;
  if (opts.jwtTtlS) server.jwtTtlS = opts.jwtTtlS;
  server.addEntries(1);
  const authority = new ServerAuthority({
    trustDomain: server.trustDomain,
    syncIntervalMs: 60_000,
    useSyncAuthorizedEntries: true,
    session: new FakeSession(server),
    clock: systemClock,
    log: nullLogger,
    random: () => 0.5,
    callTimeoutMs: opts.callTimeoutMs,
  });
  await authority.start(new AbortController().signal);
  const cache = new CacheManager({
    authority,
    keyType: 'ec-p256',
    x509CacheMaxSize: 1000,
    jwtCacheMaxSize: 1000,
    availabilityTargetMs: opts.availabilityTargetMs ?? 0,
    prefetchX509: true,
    serveDueX509: true,
    clock: systemClock,
    log: nullLogger,
  });
  cleanups.push(async () => {
    cache.close();
    await authority.close();
    await server.stop();
  });
  cache.start();
  return { server, authority, cache };
}

const UID = [parseSelector('unix:uid:1000')];

describe('workloads while the SPIRE server hangs', () => {
  it('serves a new workload the cached SVID at once while its renewal hangs; the renewal reaches the open stream once the server answers', async () => {
    // Rotation 5 s after signing: 2 s (a 10 s SVID) was passed before the first check in a loaded CI run.
    const { server, cache } = await setup({ svidTtlMs: 13_000, availabilityTargetMs: 8_000 });
    await waitUntil('the prefetched SVID', () => cache.cachedX509Count === 1);
    let updates = 0;
    const stream = cache.subscribe(UID, () => updates++);
    cleanups.push(() => stream.close());
    const first = (await stream.view()).identities[0]!;
    expect(Date.now()).toBeLessThan(first.rotateAt);

    server.hang();
    // Past the rotation time the cache's renewal goes to the server and is held there.
    await waitUntil('the renewal to be held by the server', () => server.count('BatchNewX509SVID.held') > 0, first.rotateAt - Date.now() + 3_000);
    const during = await timed(cache.x509For(UID));
    expect(during.value.identities.map((i) => i.serial)).toEqual([first.serial]);
    expect(Date.now()).toBeLessThan(first.notAfter);
    expect(during.ms, 'a new workload waits for nothing').toBeLessThan(200);

    server.resume();
    await waitUntil('the renewed SVID to reach the stream', async () => updates > 0 && (await stream.view()).identities[0]!.serial !== first.serial);
    const renewed = (await stream.view()).identities[0]!;
    expect(renewed.notAfter).toBeGreaterThan(first.notAfter);
    // And new workloads get it too.
    expect((await cache.x509For(UID)).identities[0]!.serial).toBe(renewed.serial);
  }, 20_000);

  it('returns a cached JWT-SVID past half its life within a second while the server hangs, at once once the hang is known, and a fresh one after it answers', async () => {
    const { server, authority, cache } = await setup({ jwtTtlS: 6, callTimeoutMs: 500 });
    const entry = authority.snapshot().entries[0]!;
    const first = await cache.jwtFor(entry, ['aud']);
    server.hang();
    await sleep(first.issuedAt + (first.expiresAt - first.issuedAt) / 2 + 100 - Date.now());

    // The first caller finds the server not yet known to hang: it waits for its call's deadline at most.
    const a = await timed(cache.jwtFor(entry, ['aud']));
    expect(a.value.token).toBe(first.token);
    expect(a.ms).toBeLessThan(1_200);
    expect(authority.status().serverReachable).toBe(false);
    // Now the hang is known: no wait at all.
    const b = await timed(cache.jwtFor(entry, ['aud']));
    expect(b.value.token).toBe(first.token);
    expect(b.ms).toBeLessThan(100);

    server.resume();
    await waitUntil('a fresh JWT-SVID', async () => (await cache.jwtFor(entry, ['aud'])).token !== first.token, 3_000);
    expect(Date.now()).toBeLessThan(first.expiresAt);
  }, 20_000);
});
