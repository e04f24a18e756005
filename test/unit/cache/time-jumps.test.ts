/**
 * Workload SVIDs across wall-clock jumps: the cache manager on the real embedded
 * authority, driven by the fake clock (`jump` moves the wall clock only, as a resumed
 * host or a stepped clock does). Open subscriptions must be told, within seconds, and
 * must then see SVIDs that verify at the new time; JWT-SVIDs must not carry an iat in
 * the future.
 */
import { x509 } from '../../../src/svid/x509-lib.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WALL_CHECK_MS } from '../../../src/clock.js';
import { EmbeddedAuthority } from '../../../src/authority/embedded/index.js';
import { CacheManager } from '../../../src/cache/manager.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { config, HOUR, tempDir } from '../authority/helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});


async function setup(): Promise<{ clock: FakeClock; authority: EmbeddedAuthority; cache: CacheManager }> {
  const clock = new FakeClock();
  const d = await tempDir();
  cleanups.push(d.remove);
  const entriesFile = join(d.path, 'entries.json');
  await writeFile(
    entriesFile,
    JSON.stringify({ entries: [{ spiffe_id: 'spiffe://example.org/web', parent_id: 'spiffe://example.org/spire/agent/x', selectors: [{ type: 'unix', value: 'uid:1000' }] }] }),
  );
  const authority = new EmbeddedAuthority({ trustDomain: 'example.org', dataDir: d.path, config: config({ entriesFile }), clock, log: nullLogger });
  await authority.start(new AbortController().signal);
  cleanups.push(() => authority.close());
  const cache = new CacheManager({ authority, keyType: 'ec-p256', x509CacheMaxSize: 100, jwtCacheMaxSize: 100, availabilityTargetMs: 0, clock, log: nullLogger });
  cache.start();
  cleanups.push(() => cache.close());
  return { clock, authority, cache };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));

async function subscribed(cache: CacheManager): Promise<{ changes: () => number; leaf: () => Promise<x509.X509Certificate> }> {
  let n = 0;
  const sub = cache.subscribe([{ type: 'unix', value: 'uid:1000' }], () => n++);
  cleanups.push(() => sub.close());
  const leaf = async (): Promise<x509.X509Certificate> => new x509.X509Certificate(Buffer.from((await sub.view()).identities[0]!.chain[0]!));
  await leaf();
  return { changes: () => n, leaf };
}

const validAt = (c: x509.X509Certificate, now: number): boolean => c.notBefore.getTime() <= now && now <= c.notAfter.getTime();

describe('cache manager across wall-clock jumps', () => {
  it('tells subscribers within seconds of a backward jump and then serves an SVID whose notBefore is not in the future', async () => {
    const { clock, authority, cache } = await setup();
    const s = await subscribed(cache);
    const before = s.changes();
    clock.jump(-2 * HOUR);
    expect(validAt(await s.leaf(), clock.now())).toBe(true);
    clock.advance(WALL_CHECK_MS);
    await authority.idle();
    await settle();
    expect(s.changes()).toBeGreaterThan(before);
    expect(validAt(await s.leaf(), clock.now())).toBe(true);
  });

  it('tells subscribers within seconds of a forward jump past the SVID and CA expiry, then serves a valid SVID', async () => {
    const { clock, authority, cache } = await setup();
    const s = await subscribed(cache);
    const before = s.changes();
    clock.jump(30 * HOUR);
    clock.advance(WALL_CHECK_MS);
    await authority.idle();
    await settle();
    expect(s.changes()).toBeGreaterThan(before);
    expect(validAt(await s.leaf(), clock.now())).toBe(true);
  });

  it('tells the open streams at once when another caller renews their SVID first after a jump', async () => {
    // +2 h: the SVID (1 h) has expired, the CA (24 h) has not, so nothing but the cache's own check
    // would notice. A fetch that comes before that check renews the SVID on demand; the stream that
    // holds the old one must hear of it then, not at its next re-attestation (up to 30 s later).
    const { clock, cache } = await setup();
    const s = await subscribed(cache);
    const before = s.changes();
    clock.jump(2 * HOUR);
    const fetched = await cache.x509For([{ type: 'unix', value: 'uid:1000' }]);
    expect(validAt(new x509.X509Certificate(Buffer.from(fetched.identities[0]!.chain[0]!)), clock.now())).toBe(true);
    await settle();
    expect(s.changes()).toBeGreaterThan(before);
    expect((await s.leaf()).serialNumber).toBe(new x509.X509Certificate(Buffer.from(fetched.identities[0]!.chain[0]!)).serialNumber);
  });

  it('mints a new JWT-SVID rather than serve a cached one issued in the future after a backward jump', async () => {
    const { clock, cache } = await setup();
    const [e] = cache.match([{ type: 'unix', value: 'uid:1000' }]);
    const first = await cache.jwtFor(e!, ['svc']);
    expect((await cache.jwtFor(e!, ['svc'])).token).toBe(first.token);
    clock.jump(-HOUR);
    const again = await cache.jwtFor(e!, ['svc']);
    expect(again.token).not.toBe(first.token);
    expect(again.issuedAt).toBeLessThanOrEqual(clock.now());
  });
});
