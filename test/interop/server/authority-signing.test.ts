/**
 * Workload X509-SVID signing through BatchNewX509SVID against a real spire-server v1.13.3, with
 * the ServerAuthority and X509Batcher in process over a real ServerSession (no root, no workload):
 * - the CSR cap. The server has no separate cap; it admits SignLimitPerIP = 500 CSRs per second
 *   per client IP (pkg/server/api/limits/limits.go) through a token bucket whose burst is that
 *   limit, and refuses a call with more CSRs than the burst, whole, with ResourceExhausted "rate
 *   (N) exceeds burst size (500)" (pkg/server/api/middleware/ratelimit.go, waitN). spire-agent
 *   therefore sends at most 500 (pkg/agent/manager/manager.go: NewSizeLimitedBackOff(
 *   limits.SignLimitPerIP); sync.go updateSVIDs logs "Renewing stale entries" with the limit).
 * - one CSR of a batch refused while the rest are signed: newX509SVID answers per CSR
 *   (pkg/server/api/svid/v1/service.go): NotFound "entry not found or not authorized" for an
 *   entry the agent may no longer sign, InvalidArgument "malformed CSR" for bytes that are no CSR.
 */
import { X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { unary } from '../../../src/authority/server/rpc.js';
import { ServerAuthority } from '../../../src/authority/server/server-authority.js';
import { MAX_BATCH, WAVE_BATCH, X509Batcher } from '../../../src/authority/server/x509-batcher.js';
import { generateKeyAndCsr } from '../../../src/cache/keys.js';
import { systemClock } from '../../../src/clock.js';
import type { ServerSession } from '../../../src/authority/server/session.js';
import type { SignedX509SVID } from '../../../src/authority/types.js';
import type { RegistrationEntry } from '../../../src/domain/types.js';
import { JSON_LOGS, agentConfFor, jsonLogs, sleep, startAgent, startSpireServer, waitFor, type AgentHandle, type SpireServer } from '../../helpers/spire/index.js';
import { MemoryLog, newDataDir, planSessionSuite, sessionFor } from './session-fixture.js';

const plan = planSessionSuite();
const TD = 'example.org';
const ALIAS = `spiffe://${TD}/node/signing`;
const MANY = 1100;

const uriOf = (der: Uint8Array): string | undefined => new X509Certificate(der).subjectAltName?.replace(/^URI:/, '');
const entry = (e: RegistrationEntry | undefined, what: string): RegistrationEntry => e ?? expect.fail(`no entry ${what}`);

describe.skipIf(plan.skip)('workload X509-SVID signing against spire-server v1.13.3', () => {
  let server: SpireServer;
  let authority: ServerAuthority;
  let session: ServerSession;
  let csr: Uint8Array;
  const dirs: string[] = [];
  const agents: AgentHandle[] = [];

  beforeAll(async () => {
    if (!plan.bins) throw new Error(plan.reason);
    server = await startSpireServer({ bins: plan.bins, cacheReloadInterval: '1s', logLevel: 'INFO' });
    const many = Array.from({ length: MANY }, (_, i) => ({ spiffe_id: `spiffe://${TD}/many/${i}`, parent_id: ALIAS, selectors: [{ type: 'unix', value: `uid:${50_000 + i}` }] }));
    const few = ['a', 'b', 'c'].map((n) => ({ spiffe_id: `spiffe://${TD}/few/${n}`, parent_id: ALIAS, selectors: [{ type: 'unix', value: 'uid:1001' }] }));
    await server.createEntries([...few, ...many]);
    const dataDir = await newDataDir();
    dirs.push(dataDir);
    session = sessionFor(server, { dataDir, joinToken: await server.generateToken(ALIAS) }).session;
    authority = new ServerAuthority({ trustDomain: TD, syncIntervalMs: 600_000, useSyncAuthorizedEntries: true, session, clock: systemClock, log: new MemoryLog() });
    await authority.start(new AbortController().signal);
    await waitFor('all entries synced', async () => {
      await authority.sync();
      return authority.snapshot().entries.length >= MANY + 3 ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1000 });
    csr = (await generateKeyAndCsr('ec-p256')).csrDer;
  }, 300_000);

  afterAll(async () => {
    await authority?.close();
    for (const a of agents) await a.destroy();
    await server?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const svidClient = () => session.clients().svid;
  const manyEntries = () => authority.snapshot().entries.filter((e) => e.spiffeId.includes('/many/'));

  it('the real server refuses a call of 501 CSRs as a whole and signs 500 (SPIRE\'s SignLimitPerIP)', async () => {
    const [first] = manyEntries();
    const params = (n: number) => Array.from({ length: n }, () => ({ entry_id: first!.id, csr }));
    const err = await unary(svidClient(), 'BatchNewX509SVID', { params: params(501) }).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toContain('rate (501) exceeds burst size (500)');
    const ok = await unary<{ results: { status: { code: number } }[] }>(svidClient(), 'BatchNewX509SVID', { params: params(500) });
    expect(ok.results).toHaveLength(500);
    expect(ok.results.every((r) => (r.status?.code ?? 0) === 0)).toBe(true);
    expect(MAX_BATCH).toBe(500);
  }, 120_000);

  it(`${MANY} CSRs a workload waits for go out in calls of at most 500, and the server signs every one`, async () => {
    const batcher = new X509Batcher({ client: svidClient, clock: systemClock, onCall: () => {} });
    const entries = manyEntries();
    expect(entries).toHaveLength(MANY);
    const t0 = Date.now();
    const results = await Promise.allSettled(entries.map((e) => batcher.sign(e.id, csr, true)));
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length, refused.length ? String((refused[0] as PromiseRejectedResult).reason) : '').toBe(0);
    expect(batcher.sent).toEqual([500, 500, 100]);
    const uris = results.map((r) => uriOf((r as PromiseFulfilledResult<SignedX509SVID>).value.chain[0]!));
    expect(uris).toEqual(entries.map((e) => e.spiffeId));
    console.log(`spiffe-agent: ${MANY} urgent CSRs in calls of ${batcher.sent.join(', ')}: ${Date.now() - t0} ms`);
    batcher.close();
  }, 120_000);

  it(`${MANY} CSRs of a start-up wave (ServerAuthority.signX509SVID) are all signed`, async () => {
    const entries = manyEntries();
    const results = await Promise.allSettled(entries.map((e) => authority.signX509SVID(e, csr)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(WAVE_BATCH).toBeLessThanOrEqual(MAX_BATCH);
  }, 120_000);

  it('one CSR refused (entry deleted), one refused (malformed CSR), the third in the same call signed', async () => {
    const few = authority.snapshot().entries.filter((e) => e.spiffeId.includes('/few/'));
    const a = entry(few.find((e) => e.spiffeId.endsWith('/a')), 'a');
    const b = entry(few.find((e) => e.spiffeId.endsWith('/b')), 'b');
    const c = entry(few.find((e) => e.spiffeId.endsWith('/c')), 'c');
    await server.deleteEntry(b.id);
    // The server looks entries up in its cache (rebuilt every second).
    await sleep(3_000);
    const batcher = new X509Batcher({ client: svidClient, clock: systemClock, onCall: () => {} });
    const [ra, rb, rc] = await Promise.allSettled([batcher.sign(a.id, csr, true), batcher.sign(b.id, csr, true), batcher.sign(c.id, new Uint8Array([0x30, 0x03, 1, 2, 3]), true)]);
    expect(batcher.sent).toEqual([3]);
    expect(ra.status).toBe('fulfilled');
    expect(uriOf((ra as PromiseFulfilledResult<SignedX509SVID>).value.chain[0]!)).toBe(a.spiffeId);
    expect(rb).toMatchObject({ status: 'rejected', reason: { code: 'entry_not_found', message: expect.stringContaining('entry not found or not authorized (code 5)') } });
    expect(rc).toMatchObject({ status: 'rejected', reason: { code: 'svid_refused' } });
    expect(String((rc as PromiseRejectedResult).reason.message)).toMatch(/: malformed CSR: .*\(code 3\)$/);
    // Through the authority (a start-up wave): the deleted entry alone is refused.
    const [wa, wb] = await Promise.allSettled([authority.signX509SVID(a, csr), authority.signX509SVID(b, csr)]);
    expect(wa.status).toBe('fulfilled');
    expect(wb).toMatchObject({ status: 'rejected', reason: { code: 'entry_not_found' } });
    batcher.close();
  }, 60_000);

  it(`spire-agent v1.13.3 with the same ${MANY + 3} entries: CSRs in calls of at most 500, none refused`, async () => {
    const conf = await agentConfFor(server, { joinToken: await server.generateToken(ALIAS), agentExtra: JSON_LOGS }, 'ref-signing');
    const agent = await startAgent('spire-agent', plan.bins!, conf);
    agents.push(agent);
    const renewing = () => jsonLogs(agent).filter((l) => l.msg === 'Renewing stale entries');
    // Its LRU cache holds x509_svid_cache_max_size (1000) SVIDs; it signs them 500 at a time.
    await waitFor('spire-agent to sign its cache full', () => (jsonLogs(agent).filter((l) => l.msg === 'Creating X509-SVID').length >= 1000 ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 1000,
      describe: () => agent.logTail(),
    });
    const lines = renewing();
    console.log(`spire-agent: "Renewing stale entries" ${JSON.stringify(lines.map((l) => ({ count: l.count, limit: l.limit })))}`);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.every((l) => Number(l.limit) === 500)).toBe(true);
    expect(jsonLogs(agent).filter((l) => l.msg === 'Failed to batch new X509 SVID(s)')).toEqual([]);
  }, 180_000);
});
