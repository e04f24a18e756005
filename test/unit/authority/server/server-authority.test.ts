/**
 * ServerAuthority's sync, paging, batching and outage logic against a FAKE in-process SPIRE
 * server (test/helpers/fake-spire-server.ts). The same behaviours are checked against the real
 * spire-server v1.13.3 in test/interop/server/; the fake's header lists where, and the few the
 * real server cannot show.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { ServerAuthority } from '../../../../src/authority/server/server-authority.js';
import { Backoff, syncBackoffMaxMs } from '../../../../src/authority/server/backoff.js';
import { generateKeyAndCsr } from '../../../../src/cache/keys.js';
import { systemClock } from '../../../../src/clock.js';
import type { RegistrationEntry } from '../../../../src/domain/types.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { FakeSession, FakeSpireServer } from '../../../helpers/fake-spire-server.js';

interface Line {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

function recordingLog(lines: Line[] = []) {
  const mk = (level: string) => (a: unknown, b?: unknown) =>
    lines.push(typeof a === 'string' ? { level, msg: a, fields: {} } : { level, msg: String(b), fields: a as Record<string, unknown> });
  const log = { child: () => log, trace: mk('trace'), debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error') };
  return { log: log as never, lines };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { useSync?: boolean; entries?: number; syncIntervalMs?: number } = {}) {
  const server = await FakeSpireServer.start();
  if (opts.entries) server.addEntries(opts.entries);
  const session = new FakeSession(server);
  const { log, lines } = recordingLog();
  const authority = new ServerAuthority({
    trustDomain: server.trustDomain,
    syncIntervalMs: opts.syncIntervalMs ?? 60_000,
    useSyncAuthorizedEntries: opts.useSync ?? true,
    session,
    clock: systemClock,
    log,
    random: () => 0.5,
  });
  cleanups.push(async () => {
    await authority.close();
    await server.stop();
  });
  await authority.start(new AbortController().signal);
  return { server, session, authority, lines };
}

const ids = (entries: readonly RegistrationEntry[]) => entries.map((e) => e.id);

describe('entry sync', () => {
  it('takes all entries from the one response SyncAuthorizedEntries sends when they fit a page', async () => {
    const { server, authority } = await setup({ entries: 3 });
    expect(ids(authority.snapshot().entries)).toEqual(['e-00000', 'e-00001', 'e-00002']);
    expect(authority.snapshot().entries[0]).toMatchObject({ spiffeId: 'spiffe://example.org/e-00000', selectors: [{ type: 'unix', value: 'uid:1000' }] });
    expect(server.count('SyncAuthorizedEntries.ids')).toBe(0);
    expect(server.count('GetAuthorizedEntries')).toBe(0);
  });

  it('pages revisions for more than a page of entries, then asks in full only for new or changed ones, one page per request', async () => {
    const { server, authority } = await setup({ entries: 1200 });
    expect(authority.snapshot().entries).toHaveLength(1200);
    const asked = server.calls.filter((c) => c.method === 'SyncAuthorizedEntries.ids').map((c) => (c.request as string[]).length);
    expect(asked).toEqual([500, 500, 200]);

    server.calls.length = 0;
    const changed = server.entries.get('e-00007')!;
    changed.revision_number = 1;
    changed.hint = 'edited';
    server.entries.delete('e-00008');
    server.addEntries(1, 'new');
    await authority.sync();
    const second = server.calls.filter((c) => c.method === 'SyncAuthorizedEntries.ids').map((c) => c.request);
    expect(second).toEqual([['e-00007', 'new-00000']]);
    const snap = authority.snapshot();
    expect(snap.entries).toHaveLength(1200);
    expect(snap.entries.find((e) => e.id === 'e-00007')!.hint).toBe('edited');
    expect(ids(snap.entries)).not.toContain('e-00008');
  });

  it('treats an entry recreated with the same id and revision but a new created_at as changed', async () => {
    const { server, authority } = await setup({ entries: 600 });
    server.calls.length = 0;
    server.entries.get('e-00003')!.created_at = 1800000000;
    await authority.sync();
    expect(server.calls.filter((c) => c.method === 'SyncAuthorizedEntries.ids').map((c) => c.request)).toEqual([['e-00003']]);
  });

  it('uses GetAuthorizedEntries when use_sync_authorized_entries is false', async () => {
    const { server, authority } = await setup({ useSync: false, entries: 700 });
    expect(server.count('GetAuthorizedEntries')).toBe(1);
    expect(server.count('SyncAuthorizedEntries')).toBe(0);
    expect(authority.snapshot().entries).toHaveLength(700);
  });

  it('skips malformed entries as spire-agent does and hides store_svid entries from workloads', async () => {
    const server = await FakeSpireServer.start();
    server.addEntries(1, 'ok');
    server.addEntries(1, 'nosel', { selectors: [] });
    server.addEntries(1, 'colon', { selectors: [{ type: 'a:b', value: 'x' }] });
    server.addEntries(1, 'store', { store_svid: true });
    const session = new FakeSession(server);
    const { log, lines } = recordingLog();
    const authority = new ServerAuthority({ trustDomain: 'example.org', syncIntervalMs: 60_000, useSyncAuthorizedEntries: true, session, clock: systemClock, log });
    cleanups.push(async () => (await authority.close(), await server.stop()));
    await authority.start(new AbortController().signal);
    expect(ids(authority.snapshot().entries)).toEqual(['ok-00000']);
    expect(lines.filter((l) => l.msg.startsWith('Received malformed entry')).map((l) => l.fields.error)).toEqual(["selector type contains ':'", 'selector list is empty']);
  });

  it('fails start-up with a clear error when the first sync fails and retry_bootstrap is off', async () => {
    const server = await FakeSpireServer.start();
    server.failWith = grpc.status.INTERNAL;
    const session = new FakeSession(server);
    const authority = new ServerAuthority({ trustDomain: 'example.org', syncIntervalMs: 60_000, useSyncAuthorizedEntries: true, session, clock: systemClock, log: recordingLog().log });
    cleanups.push(async () => (await authority.close(), await server.stop()));
    await expect(authority.start(new AbortController().signal)).rejects.toMatchObject({ code: 'initial_sync_failed', message: expect.stringContaining('retry_bootstrap') });
  });
});

describe('first sync with retry_bootstrap', () => {
  it('retries with spire-agent\'s backoff (5 s ×1.5), logs the failure once, and gives up after 1 minute', async () => {
    const server = await FakeSpireServer.start();
    server.failWith = grpc.status.INTERNAL;
    const session = new FakeSession(server);
    const clock = new FakeClock(Date.now());
    // The retry waits; each call's own 4 s deadline timer is left out.
    const waits: number[] = [];
    const setTimer = clock.setTimer.bind(clock);
    clock.setTimer = (ms, fn) => (ms !== 4_000 && waits.push(ms), setTimer(ms, fn));
    const { log, lines } = recordingLog();
    const authority = new ServerAuthority({ trustDomain: 'example.org', syncIntervalMs: 60_000, useSyncAuthorizedEntries: true, session, clock, log, retryBootstrap: true, random: () => 0.5 });
    cleanups.push(async () => (await authority.close(), await server.stop()));
    const started = authority.start(new AbortController().signal);
    started.catch(() => undefined);
    let settled = false;
    started.finally(() => (settled = true)).catch(() => undefined);
    for (let seen = 0, i = 0; i < 400 && !settled; i++) {
      await new Promise((r) => setTimeout(r, 5));
      if (waits.length > seen) clock.advance(waits[(seen = waits.length) - 1] as number);
    }
    await expect(started).rejects.toMatchObject({ code: 'initial_sync_failed', message: expect.stringContaining('retries are over') });
    expect(waits).toEqual([5000, 7500, 11250, 16875]);
    const failed = lines.filter((l) => l.msg === 'Failed to initialize manager');
    expect(failed.map((l) => l.level)).toEqual(['warn', 'debug', 'debug', 'debug']);
  });

  it('recovers when the server answers again', async () => {
    const server = await FakeSpireServer.start();
    server.addEntries(1);
    server.failWith = grpc.status.UNAVAILABLE;
    const session = new FakeSession(server);
    const clock = new FakeClock(Date.now());
    const { log, lines } = recordingLog();
    const authority = new ServerAuthority({ trustDomain: 'example.org', syncIntervalMs: 60_000, useSyncAuthorizedEntries: true, session, clock, log, retryBootstrap: true, random: () => 0.5 });
    cleanups.push(async () => (await authority.close(), await server.stop()));
    const started = authority.start(new AbortController().signal);
    await expect.poll(() => lines.some((l) => l.msg === 'Failed to initialize manager')).toBe(true);
    server.failWith = undefined;
    clock.advance(5_000);
    await started;
    expect(authority.snapshot().entries).toHaveLength(1);
    expect(lines.filter((l) => /Failed to initialize manager|Manager initialized after failed attempts/.test(l.msg)).map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'Failed to initialize manager'],
      ['info', 'Manager initialized after failed attempts'],
    ]);
  });
});

describe('bundles', () => {
  it('fetches the own bundle, hands changed X.509 authorities to the session once, and reports tainted authorities', async () => {
    const { server, session, authority } = await setup({ entries: 1 });
    expect(authority.snapshot().bundle.x509Authorities).toEqual([server.ca.der()]);
    expect(authority.snapshot().bundle.jwtAuthorities.map((k) => k.keyId)).toEqual(['kid-1']);
    await authority.sync();
    expect(session.bundles).toHaveLength(1);
    server.taintOwn = true;
    await authority.sync();
    expect(authority.snapshot().bundle.taintedX509Authorities).toEqual([server.ca.der()]);
    expect(session.bundles).toHaveLength(1);
  });

  it('fetches federated bundles for trust domains entries federate with and skips ones the server does not have', async () => {
    const server = await FakeSpireServer.start();
    server.addEntries(1, 'fed', { federates_with: ['other.org', 'missing.org'] });
    server.federated.set('other.org', { trust_domain: 'other.org', x509_authorities: [{ asn1: server.ca.der() }] });
    const session = new FakeSession(server);
    const { log, lines } = recordingLog();
    const authority = new ServerAuthority({ trustDomain: 'example.org', syncIntervalMs: 60_000, useSyncAuthorizedEntries: true, session, clock: systemClock, log });
    cleanups.push(async () => (await authority.close(), await server.stop()));
    await authority.start(new AbortController().signal);
    expect([...authority.snapshot().federatedBundles.keys()]).toEqual(['other.org']);
    expect(lines.some((l) => l.msg === 'Federated bundle not found' && l.fields.trust_domain === 'missing.org')).toBe(true);
  });

  it('emits a change only when something workloads can see changed', async () => {
    const { server, authority } = await setup({ entries: 2 });
    let changes = 0;
    authority.onChange(() => changes++);
    await authority.sync();
    await authority.sync();
    expect(changes).toBe(0);
    server.addEntries(1, 'late');
    await authority.sync();
    expect(changes).toBe(1);
  });
});

describe('X.509-SVID signing', () => {
  it('sends concurrent requests as one BatchNewX509SVID call', async () => {
    const { server, authority } = await setup({ entries: 20 });
    const entries = authority.snapshot().entries;
    const csrs = await Promise.all(entries.map(() => generateKeyAndCsr('ec-p256')));
    const svids = await Promise.all(entries.map((e, i) => authority.signX509SVID(e, csrs[i]!.csrDer)));
    expect(server.calls.filter((c) => c.method === 'BatchNewX509SVID').map((c) => (c.request as { params: unknown[] }).params.length)).toEqual([20]);
    expect(svids.every((s) => s.chain.length === 1 && s.notAfter > Date.now())).toBe(true);
  });

  it('never sends more than 500 CSRs in one call', async () => {
    const { server, authority } = await setup({ entries: 1100 });
    const entries = authority.snapshot().entries;
    const { csrDer } = await generateKeyAndCsr('ec-p256');
    await Promise.all(entries.map((e) => authority.signX509SVID(e, csrDer)));
    const sizes = server.calls.filter((c) => c.method === 'BatchNewX509SVID').map((c) => (c.request as { params: unknown[] }).params.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(500);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1100);
    // The fake server signs 1,100 certificates: seconds on an idle machine, past 30 s next to CI's cold
    // SPIRE and Kubernetes builds (load 12). The test is about how the calls are cut, not their speed.
  }, 120_000);

  it('rejects only the entry the server did not sign', async () => {
    const { server, authority } = await setup({ entries: 2 });
    const [a, b] = authority.snapshot().entries;
    server.entries.delete(b!.id);
    const { csrDer } = await generateKeyAndCsr('ec-p256');
    const [ra, rb] = await Promise.allSettled([authority.signX509SVID(a!, csrDer), authority.signX509SVID(b!, csrDer)]);
    expect(ra.status).toBe('fulfilled');
    expect(rb).toMatchObject({ status: 'rejected', reason: { code: 'entry_not_found' } });
  });
});

describe('outages', () => {
  it('keeps the last snapshot, logs one warning for the outage and one line when the server is back', async () => {
    const { server, authority, lines } = await setup({ entries: 2 });
    const before = authority.snapshot();
    const port = server.port;
    await server.stop();
    for (let i = 0; i < 4; i++) await expect(authority.sync()).rejects.toBeDefined();
    expect(authority.snapshot()).toBe(before);
    expect(authority.status()).toMatchObject({ mode: 'server', ready: true, serverReachable: false });
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    const lastOk = authority.status().lastSyncSuccess;
    await server.listen(port);
    // grpc-js reconnects on its own backoff (about 1 s); the sync loop would simply try again later.
    for (let i = 0; ; i++) {
      try {
        await authority.sync();
        break;
      } catch (err) {
        if (i > 40) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    expect(authority.status().serverReachable).toBe(true);
    expect(authority.status().lastSyncSuccess).toBeGreaterThan(lastOk);
    expect(lines.filter((l) => l.msg.startsWith('SPIRE server reachable again'))).toHaveLength(1);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
  });

  it('reports the agent SVID chain and last sync in status()', async () => {
    const { server, authority } = await setup({ entries: 1 });
    const s = authority.status();
    expect(s.agentSVID?.spiffeId).toBe('spiffe://example.org/spire/agent/fake');
    expect(s.agentSVID?.chain).toEqual([server.ca.der()]);
    expect(s.lastSyncSuccess).toBeGreaterThan(Date.now() - 10_000);
  });
});

describe('backoff', () => {
  it("grows x1.5 from the sync interval with +-10% jitter up to min(8m, 48 x interval), as spire-agent's", () => {
    const mid = new Backoff(5_000, syncBackoffMaxMs(5_000), () => 0.5);
    expect([1, 2, 3, 4].map(() => mid.next())).toEqual([5_000, 7_500, 11_250, 16_875]);
    for (let i = 0; i < 30; i++) mid.next();
    expect(mid.next()).toBe(240_000);
    mid.reset();
    expect(mid.next()).toBe(5_000);
    const low = new Backoff(5_000, 240_000, () => 0);
    expect(low.next()).toBe(4_500);
    expect(syncBackoffMaxMs(60_000)).toBe(480_000);
  });
});
