/**
 * Every Workload API RPC's logic without root or sockets: the handler gets FAKE callers through
 * its `callerOf` seam (test/helpers/request-path.ts), a FAKE attestation and cache with only the
 * methods it declares, and in-memory grpc-js calls. Statuses, audit records and stream updates
 * are what a client and an operator would see.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../../src/attestation/workload/attest.js';
import { WorkloadHandler } from '../../../src/endpoints/workload/handler.js';
import { AuditLog } from '../../../src/telemetry/audit.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeAttestation, FakeCache, FakeCall, FakeCaller, entry, memoryLogger, settle, unary } from '../../helpers/request-path.js';

const UID = [{ type: 'unix', value: 'uid:1000' }];

function setup(o: { reattestIntervalMs?: number; allowUnauthenticatedVerifiers?: boolean } = {}) {
  const log = memoryLogger();
  const callers = new Map<string, FakeCaller>();
  const attestation = new FakeAttestation();
  const cache = new FakeCache();
  const clock = new FakeClock();
  const handler = new WorkloadHandler({
    cache,
    attestation,
    callerOf: (call) => callers.get(call.getPeer()),
    proc: { exePath: async () => '/usr/bin/workload' },
    audit: new AuditLog(log, ['unix']),
    log,
    allowUnauthenticatedVerifiers: o.allowUnauthenticatedVerifiers ?? false,
    allowedForeignJwtClaims: [],
    clock,
    reattestIntervalMs: o.reattestIntervalMs ?? 0,
  });
  const svc = handler.service();
  /** A connected caller: pid `pid` with the given selectors. */
  const connect = (pid: number, selectors = UID): FakeCaller => {
    const c = new FakeCaller(pid);
    callers.set(`peer-${pid}`, c);
    attestation.byPid.set(pid, selectors);
    return c;
  };
  const audits = () => log.lines.filter((l) => l.fields.audit).map((l) => ({ method: l.fields.method, decision: l.fields.decision, reason: l.fields.reason }));
  return { svc, cache, attestation, clock, connect, audits, log };
}

describe('Workload API handler (in memory)', () => {
  it('FetchJWTSVID: a matching caller gets one JWT-SVID per entry, audited as granted', async () => {
    const t = setup();
    t.connect(10);
    t.cache.entries = [entry('e1', 'spiffe://example.org/web', UID)];
    const r = await unary(t.svc.FetchJWTSVID as grpc.handleUnaryCall<unknown, unknown>, new FakeCall('peer-10', { audience: ['db'] }));
    expect(r.err).toBeNull();
    expect(r.value).toEqual({ svids: [{ spiffe_id: 'spiffe://example.org/web', svid: 'jwt:spiffe://example.org/web:db', hint: '' }] });
    expect(t.audits()).toEqual([{ method: 'FetchJWTSVID', decision: 'granted', reason: undefined }]);
  });

  it.each([
    ['no security header', (t: ReturnType<typeof setup>) => (t.connect(10), new FakeCall('peer-10', { audience: ['db'] }, false)), grpc.status.INVALID_ARGUMENT, 'security header missing from request'],
    ['no audience', (t: ReturnType<typeof setup>) => (t.connect(10), new FakeCall('peer-10', { audience: [] })), grpc.status.INVALID_ARGUMENT, undefined],
    ['an untracked connection', () => new FakeCall('peer-unknown', { audience: ['db'] }), grpc.status.UNAUTHENTICATED, 'caller connection is not tracked'],
    ['no matching entry', (t: ReturnType<typeof setup>) => (t.connect(10), new FakeCall('peer-10', { audience: ['db'] })), grpc.status.PERMISSION_DENIED, 'no identity issued'],
    ['a bad requested SPIFFE ID', (t: ReturnType<typeof setup>) => (t.connect(10), new FakeCall('peer-10', { audience: ['db'], spiffe_id: 'http://x' })), grpc.status.INVALID_ARGUMENT, undefined],
    [
      'a caller that exited during attestation',
      (t: ReturnType<typeof setup>) => {
        const c = t.connect(10);
        t.attestation.byPid.set(10, new AttestationError('attestation_failed', 'every attestor failed'));
        c.gone();
        return new FakeCall('peer-10', { audience: ['db'] });
      },
      grpc.status.UNAUTHENTICATED,
      undefined,
    ],
    [
      'every attestor failing for a live caller',
      (t: ReturnType<typeof setup>) => {
        t.connect(10);
        t.attestation.byPid.set(10, new AttestationError('attestation_failed', 'workload attestation failed for pid 10: every attestor failed (unix)'));
        return new FakeCall('peer-10', { audience: ['db'] });
      },
      grpc.status.UNAVAILABLE,
      'workload attestation failed for pid 10: every attestor failed (unix)',
    ],
  ])('FetchJWTSVID: %s gets its status', async (_, make, code, details) => {
    const t = setup();
    t.cache.entries = [entry('e1', 'spiffe://example.org/other', [{ type: 'unix', value: 'uid:1' }])];
    const r = await unary(t.svc.FetchJWTSVID as grpc.handleUnaryCall<unknown, unknown>, make(t));
    expect(r.err?.code).toBe(code);
    if (details) expect(r.err?.details).toBe(details);
  });

  it('ValidateJWTSVID: a token that does not validate is InvalidArgument, a missing one too', async () => {
    const t = setup();
    t.connect(10);
    t.cache.entries = [entry('e1', 'spiffe://example.org/web', UID)];
    const bad = await unary(t.svc.ValidateJWTSVID as grpc.handleUnaryCall<unknown, unknown>, new FakeCall('peer-10', { audience: 'db', svid: 'not.a.jwt' }));
    expect(bad.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const none = await unary(t.svc.ValidateJWTSVID as grpc.handleUnaryCall<unknown, unknown>, new FakeCall('peer-10', { audience: 'db' }));
    expect(none.err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'svid must be specified' });
  });

  it('FetchX509SVID: sends the SVIDs, nothing for an unchanged view, again when they change, and PermissionDenied when they are gone', async () => {
    const t = setup();
    t.connect(10);
    const e1 = entry('e1', 'spiffe://example.org/web', UID);
    t.cache.entries = [e1];
    const call = new FakeCall('peer-10');
    const done = (t.svc.FetchX509SVID as (c: unknown) => void)(call);
    void done;
    await settle();
    expect(call.writes).toHaveLength(1);
    expect(call.writes[0]).toMatchObject({ svids: [{ spiffe_id: 'spiffe://example.org/web', hint: '' }], crl: [] });
    t.cache.change();
    await settle();
    expect(call.writes).toHaveLength(1);
    t.cache.serial = 2;
    t.cache.change();
    await settle();
    expect(call.writes).toHaveLength(2);
    t.cache.entries = [];
    t.cache.change();
    await settle();
    expect(call.errors).toEqual([expect.objectContaining({ code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' })]);
    expect(t.cache.subscribers).toBe(0);
    expect(t.audits().map((a) => a.decision)).toEqual(['granted', 'granted', 'withdrawn', 'denied']);
  });

  it('FetchX509SVID: a caller that exits while its stream is open is cut off with Unauthenticated at the next change', async () => {
    const t = setup();
    const c = t.connect(10);
    t.cache.entries = [entry('e1', 'spiffe://example.org/web', UID)];
    const call = new FakeCall('peer-10');
    (t.svc.FetchX509SVID as (c: unknown) => void)(call);
    await settle();
    c.gone();
    t.cache.change();
    await settle();
    expect(call.errors).toEqual([expect.objectContaining({ code: grpc.status.UNAUTHENTICATED, details: 'caller process exited or was replaced' })]);
    expect(t.audits().at(-1)).toEqual({ method: 'FetchX509SVID', decision: 'withdrawn', reason: 'caller process exited or was replaced' });
  });

  it('FetchX509SVID: re-attests on the interval of the Clock and follows new selectors', async () => {
    const t = setup({ reattestIntervalMs: 30_000 });
    t.connect(10);
    t.cache.entries = [entry('web', 'spiffe://example.org/web', UID), entry('db', 'spiffe://example.org/db', [{ type: 'unix', value: 'uid:2000' }])];
    const call = new FakeCall('peer-10');
    (t.svc.FetchX509SVID as (c: unknown) => void)(call);
    await settle();
    const before = t.attestation.calls;
    t.attestation.byPid.set(10, [{ type: 'unix', value: 'uid:2000' }]);
    t.clock.advance(30_000);
    await settle();
    expect(t.attestation.calls).toBe(before + 1);
    expect(call.writes.at(-1)).toMatchObject({ svids: [{ spiffe_id: 'spiffe://example.org/db' }] });
    expect(t.log.lines.some((l) => l.msg === 'Caller selectors changed on re-attestation')).toBe(true);
    call.cancel();
    await settle();
    expect(t.cache.subscribers).toBe(0);
    expect(t.clock.pendingTimers).toBe(0);
  });

  it('FetchX509SVID: open streams share one re-attestation timer, at the same ticks', async () => {
    const t = setup({ reattestIntervalMs: 30_000 });
    t.cache.entries = [entry('web', 'spiffe://example.org/web', UID)];
    const calls = [10, 11, 12].map((pid) => {
      t.connect(pid);
      const call = new FakeCall(`peer-${pid}`);
      (t.svc.FetchX509SVID as (c: unknown) => void)(call);
      return call;
    });
    await settle();
    expect(calls.map((c) => c.writes.length)).toEqual([1, 1, 1]);
    expect(t.clock.pendingTimers).toBe(1);
    const before = t.attestation.calls;
    t.clock.advance(30_000);
    await settle();
    expect(t.attestation.calls).toBe(before + 3);
    calls[0]!.cancel();
    await settle();
    expect(t.clock.pendingTimers).toBe(1);
    t.clock.advance(30_000);
    await settle();
    expect(t.attestation.calls).toBe(before + 5);
    for (const c of calls.slice(1)) c.cancel();
    await settle();
    expect(t.cache.subscribers).toBe(0);
    expect(t.clock.pendingTimers).toBe(0);
  });

  it('FetchX509Bundles / FetchJWTBundles: bundles for a caller with an entry, PermissionDenied without one unless verifiers are allowed', async () => {
    const t = setup();
    t.connect(10);
    t.cache.entries = [entry('e1', 'spiffe://example.org/web', UID)];
    const x = new FakeCall('peer-10');
    (t.svc.FetchX509Bundles as (c: unknown) => void)(x);
    const j = new FakeCall('peer-10');
    (t.svc.FetchJWTBundles as (c: unknown) => void)(j);
    await settle();
    expect(Object.keys((x.writes[0] as { bundles: object }).bundles)).toEqual(['spiffe://example.org']);
    expect(JSON.parse(String((j.writes[0] as { bundles: Record<string, Buffer> }).bundles['spiffe://example.org']))).toEqual({ keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1' }] });

    const stranger = setup();
    stranger.connect(11);
    const s = new FakeCall('peer-11');
    (stranger.svc.FetchX509Bundles as (c: unknown) => void)(s);
    await settle();
    expect(s.errors[0]?.code).toBe(grpc.status.PERMISSION_DENIED);

    const verifier = setup({ allowUnauthenticatedVerifiers: true });
    verifier.connect(12);
    const v = new FakeCall('peer-12');
    (verifier.svc.FetchX509Bundles as (c: unknown) => void)(v);
    await settle();
    expect(v.writes).toHaveLength(1);
  });

  it('FetchWITSVID is Unimplemented', () => {
    const t = setup();
    const call = new FakeCall('peer-10');
    (t.svc.FetchWITSVID as (c: unknown) => void)(call);
    expect(call.errors[0]?.code).toBe(grpc.status.UNIMPLEMENTED);
  });
});
