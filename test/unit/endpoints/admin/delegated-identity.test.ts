/**
 * The Delegated Identity API in memory, without root: the delegate is a FAKE caller reached
 * through the CallAttestor's `callerOf` seam; the workload it names is found by a FAKE
 * attestation (by pid) or by selectors; the cache is FAKE. Real DelegateAuth, real handler.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DelegateAuth } from '../../../../src/endpoints/admin/delegate-auth.js';
import { DelegatedIdentityHandler } from '../../../../src/endpoints/admin/delegated-identity.js';
import { CallAttestor } from '../../../../src/endpoints/call-attestor.js';
import { AuditLog } from '../../../../src/telemetry/audit.js';
import { FakeAttestation, FakeCache, FakeCall, FakeCaller, entry, memoryLogger, settle, unary } from '../../../helpers/request-path.js';

const DELEGATE = [{ type: 'unix', value: 'uid:0' }];
const WEB = [{ type: 'unix', value: 'uid:1000' }];

function setup(authorized = ['spiffe://example.org/delegate']) {
  const log = memoryLogger();
  const audit = new AuditLog(log, ['unix']);
  const delegate = new FakeCaller(5, 0, 0);
  const attestation = new FakeAttestation();
  attestation.byPid.set(5, DELEGATE);
  attestation.byPid.set(600, WEB);
  const cache = new FakeCache();
  cache.entries = [entry('d', 'spiffe://example.org/delegate', DELEGATE), entry('w', 'spiffe://example.org/web', WEB)];
  const attestor = new CallAttestor({ attestation, callerOf: (c) => (c.getPeer() === 'admin-5' ? delegate : undefined), proc: { exePath: async () => '/usr/bin/proxy' }, audit });
  const auth = new DelegateAuth({ attestor, attestation, match: (s) => cache.match(s), authorized, audit });
  const svc = new DelegatedIdentityHandler({ auth, cache, audit, log }).service();
  return { svc, cache, delegate, log };
}

describe('Delegated Identity API (in memory)', () => {
  it('FetchJWTSVIDs for a workload named by pid', async () => {
    const t = setup();
    const r = await unary(t.svc.FetchJWTSVIDs as grpc.handleUnaryCall<unknown, unknown>, new FakeCall('admin-5', { audience: ['db'], pid: 600 }, false));
    expect(r.err).toBeNull();
    expect(r.value).toMatchObject({ svids: [{ token: 'jwt:spiffe://example.org/web:db', id: { trust_domain: 'example.org', path: '/web' } }] });
  });

  it('FetchJWTSVIDs: a caller that is not an authorized delegate is PermissionDenied', async () => {
    const t = setup([]);
    const r = await unary(t.svc.FetchJWTSVIDs as grpc.handleUnaryCall<unknown, unknown>, new FakeCall('admin-5', { audience: ['db'], pid: 600 }, false));
    expect(r.err).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: 'caller not configured as an authorized delegate' });
  });

  it('SubscribeToX509SVIDs for a workload named by selectors: an update now and one per change', async () => {
    const t = setup();
    const call = new FakeCall('admin-5', { selectors: WEB }, false);
    (t.svc.SubscribeToX509SVIDs as (c: unknown) => void)(call);
    await settle();
    expect(call.writes).toHaveLength(1);
    expect(call.writes[0]).toMatchObject({ x509_svids: [{ x509_svid: { id: { path: '/web' } } }] });
    t.cache.serial = 2;
    t.cache.change();
    await settle();
    expect(call.writes).toHaveLength(2);
    call.cancel();
    await settle();
    expect(t.cache.subscribers).toBe(0);
  });

  it('SubscribeToX509Bundles and SubscribeToJWTBundles send the bundles', async () => {
    const t = setup();
    const x = new FakeCall('admin-5', {}, false);
    const j = new FakeCall('admin-5', {}, false);
    (t.svc.SubscribeToX509Bundles as (c: unknown) => void)(x);
    (t.svc.SubscribeToJWTBundles as (c: unknown) => void)(j);
    await settle();
    expect(Object.keys((x.writes[0] as { ca_certificates: object }).ca_certificates)).toEqual(['spiffe://example.org']);
    expect(Object.keys((j.writes[0] as { bundles: object }).bundles)).toEqual(['spiffe://example.org']);
  });

  it('a request naming both selectors and a pid is InvalidArgument', async () => {
    const t = setup();
    const call = new FakeCall('admin-5', { selectors: WEB, pid: 600 }, false);
    (t.svc.SubscribeToX509SVIDs as (c: unknown) => void)(call);
    await settle();
    expect(call.errors).toEqual([expect.objectContaining({ code: grpc.status.INVALID_ARGUMENT, details: 'cannot specify both selectors and pid' })]);
  });
});
