/**
 * The SDS handler in memory, without root: FAKE callers through the CallAttestor's `callerOf`
 * seam, a FAKE cache serving real certificates from TestCA, in-memory grpc-js calls.
 */
import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RegistrationEntry } from '../../../../src/authority/types.js';
import type { X509Identity } from '../../../../src/cache/manager.js';
import { CallAttestor } from '../../../../src/endpoints/call-attestor.js';
import { SdsHandler } from '../../../../src/endpoints/sds/handler.js';
import { AuditLog } from '../../../../src/telemetry/audit.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { FakeAttestation, FakeCache, FakeCall, FakeCaller, memoryLogger, settle, unary } from '../../../helpers/request-path.js';
import { TestCA } from '../../../helpers/test-ca.js';
import { identity, trustBundle } from './fixtures.js';

const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
let web: X509Identity;
let ca: TestCA;

beforeAll(async () => {
  ca = await TestCA.create('example.org');
  web = await identity(ca, 'web');
});

class CertCache extends FakeCache {
  override identity(e: RegistrationEntry): X509Identity {
    return { ...web, entry: e, serial: `${web.serial}-${this.serial}` };
  }
}

function setup() {
  const log = memoryLogger();
  const caller = new FakeCaller(9);
  const attestation = new FakeAttestation();
  attestation.byPid.set(9, [{ type: 'unix', value: 'uid:1000' }]);
  const cache = new CertCache();
  cache.bundle = trustBundle(ca);
  cache.entries = [{ ...web.entry }];
  const audit = new AuditLog(log, ['unix']);
  let n = 0;
  const handler = new SdsHandler({
    cache,
    attestor: new CallAttestor({ attestation, callerOf: (c) => (c.getPeer() === 'peer-9' ? caller : undefined), proc: { exePath: async () => '/usr/bin/envoy' }, audit }),
    audit,
    log,
    clock: new FakeClock(),
    names: { defaultSvidName: 'default', defaultBundleName: 'ROOTCA', defaultAllBundlesName: 'ALL', disableSpiffeCertValidation: false },
    reattestIntervalMs: 0,
    nonce: () => `nonce-${++n}`,
  });
  return { svc: handler.service(), cache, caller, log };
}

describe('SDS handler (in memory)', () => {
  it('FetchSecrets answers the named secrets of an attested caller', async () => {
    const t = setup();
    const r = await unary(t.svc.FetchSecrets as grpc.handleUnaryCall<unknown, unknown>, new FakeCall('peer-9', { resource_names: ['default', 'ROOTCA'], type_url: TLS }, false));
    expect(r.err).toBeNull();
    expect((r.value as { resources: { name: string }[] }).resources.map((s) => s.name).sort()).toEqual(['ROOTCA', 'default']);
  });

  it('FetchSecrets: an untracked connection is Unauthenticated', async () => {
    const t = setup();
    const r = await unary(t.svc.FetchSecrets as grpc.handleUnaryCall<unknown, unknown>, new FakeCall('peer-x', { resource_names: ['default'] }, false));
    expect(r.err?.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('StreamSecrets: answers a request, sends again when the SVID rotates, and ends with OK when Envoy closes its side', async () => {
    const t = setup();
    const call = new FakeCall('peer-9', undefined, false);
    (t.svc.StreamSecrets as (c: unknown) => void)(call);
    call.emit('data', { resource_names: ['default'], type_url: TLS });
    await settle();
    expect(call.writes).toHaveLength(1);
    expect(call.writes[0]).toMatchObject({ version_info: expect.any(String), nonce: 'nonce-1', type_url: TLS });
    const first = call.writes[0] as { version_info: string; nonce: string };
    call.emit('data', { resource_names: ['default'], type_url: TLS, version_info: first.version_info, response_nonce: first.nonce });
    await settle();
    expect(call.writes).toHaveLength(1);
    t.cache.serial = 2;
    t.cache.change();
    await settle();
    expect(call.writes).toHaveLength(2);
    let ended = false;
    call.end = () => void (ended = true);
    call.emit('end');
    await settle();
    expect(ended).toBe(true);
    expect(call.errors).toEqual([]);
    expect(t.cache.subscribers).toBe(0);
  });

  it('StreamSecrets: a caller that exits is cut off with Unauthenticated at the next change', async () => {
    const t = setup();
    const call = new FakeCall('peer-9', undefined, false);
    (t.svc.StreamSecrets as (c: unknown) => void)(call);
    call.emit('data', { resource_names: ['default'], type_url: TLS });
    await settle();
    t.caller.gone();
    t.cache.change();
    await settle();
    expect(call.errors.map((e) => e.code)).toEqual([grpc.status.UNAUTHENTICATED]);
  });

  it('DeltaSecrets is Unimplemented', () => {
    const t = setup();
    const call = new FakeCall('peer-9');
    (t.svc.DeltaSecrets as (c: unknown) => void)(call);
    expect(call.errors[0]?.code).toBe(grpc.status.UNIMPLEMENTED);
  });
});
