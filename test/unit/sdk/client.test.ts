import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCA } from '../../helpers/test-ca.js';
import { concatDer, TrustDomain } from '../../../src/svid/index.js';
import { JWTSource, SourceClosedError, WorkloadAPIClient, WorkloadAPIError, X509Source } from '../../../src/sdk/index.js';
import type { RawX509SVIDResponse } from '../../../src/sdk/proto.js';
import { grpcError, startFakeWorkloadAPI, type FakeWorkloadAPI } from './fake-workload-api.js';

// Every test talks to the in-test FAKE Workload API (fake-workload-api.ts), not the daemon.
const TD = TrustDomain.parse('example.org');
const FAST = { initialMs: 10, maxMs: 20 };

async function x509Response(ids = ['spiffe://example.org/workload']): Promise<RawX509SVIDResponse> {
  const ca = await TestCA.create('example.org');
  const fed = await TestCA.create('federated.test');
  const svids = [];
  for (const id of ids) {
    const s = await ca.createX509SVID(id);
    svids.push({ spiffe_id: id, x509_svid: Buffer.from(concatDer(s.chain)), x509_svid_key: Buffer.from(s.privateKeyPkcs8), bundle: Buffer.from(ca.bundle().toDer()), hint: '' });
  }
  return { svids, crl: [], federated_bundles: { 'spiffe://federated.test': Buffer.from(fed.bundle().toDer()) } };
}

let fake: FakeWorkloadAPI | undefined;
let client: WorkloadAPIClient | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await fake?.close();
  fake = undefined;
});

describe('WorkloadAPIClient', () => {
  it('sends workload.spiffe.io: true on streaming and unary calls', async () => {
    const resp = await x509Response();
    fake = await startFakeWorkloadAPI({
      FetchX509SVID: (call) => call.write(resp),
      FetchJWTSVID: (_call, cb) => cb!(grpcError(grpc.status.PERMISSION_DENIED, 'no identity issued')),
    });
    client = new WorkloadAPIClient({ address: fake.address });
    await client.fetchX509Context();
    await expect(client.fetchJWTSVIDs({ audience: ['a'] })).rejects.toMatchObject({ status: grpc.status.PERMISSION_DENIED });
    expect(fake.calls.map((c) => [c.method, c.header])).toEqual([
      ['FetchX509SVID', ['true']],
      ['FetchJWTSVID', ['true']],
    ]);
  });

  it('finds the socket through SPIFFE_ENDPOINT_SOCKET in the env it is given', async () => {
    const resp = await x509Response();
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.write(resp) });
    client = new WorkloadAPIClient({ env: { SPIFFE_ENDPOINT_SOCKET: fake.address } });
    const ctx = await client.fetchX509Context();
    expect(ctx.svids[0]!.id.toString()).toBe('spiffe://example.org/workload');
  });

  it('parses an X.509 context: SVIDs in order, own and federated bundles', async () => {
    const resp = await x509Response(['spiffe://example.org/a', 'spiffe://example.org/b']);
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.write(resp) });
    client = new WorkloadAPIClient({ address: fake.address });
    const ctx = await client.fetchX509Context();
    expect(ctx.svids.map((s) => s.id.toString())).toEqual(['spiffe://example.org/a', 'spiffe://example.org/b']);
    expect(ctx.bundles.bundles().map((b) => b.trustDomain.name).sort()).toEqual(['example.org', 'federated.test']);
  });

  it('rejects a response whose key does not match its certificate', async () => {
    const resp = await x509Response();
    const other = await x509Response();
    resp.svids[0]!.x509_svid_key = other.svids[0]!.x509_svid_key;
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.write(resp) });
    client = new WorkloadAPIClient({ address: fake.address });
    await expect(client.fetchX509Context()).rejects.toThrow(/does not match private key/);
  });

  it('reconnects a watch after UNAVAILABLE and delivers the next update', async () => {
    const resp = await x509Response();
    let n = 0;
    fake = await startFakeWorkloadAPI({
      FetchX509SVID: (call) => {
        if (++n === 1) call.emit('error', grpcError(grpc.status.UNAVAILABLE, 'agent restarting'));
        else call.write(resp);
      },
    });
    client = new WorkloadAPIClient({ address: fake.address, backoff: FAST });
    const stop = new AbortController();
    const errors: Error[] = [];
    const update = new Promise<string>((resolve) => {
      void client!.watchX509Context({ onUpdate: (ctx) => resolve(ctx.svids[0]!.id.toString()), onError: (e) => errors.push(e) }, stop.signal);
    });
    expect(await update).toBe('spiffe://example.org/workload');
    stop.abort();
    expect(n).toBe(2);
    expect(errors[0]).toMatchObject({ status: grpc.status.UNAVAILABLE });
  });

  it('reconnects when the server ends the stream cleanly', async () => {
    const resp = await x509Response();
    let n = 0;
    fake = await startFakeWorkloadAPI({
      FetchX509SVID: (call) => {
        call.write(resp);
        if (++n === 1) call.end();
      },
    });
    client = new WorkloadAPIClient({ address: fake.address, backoff: FAST });
    const stop = new AbortController();
    let updates = 0;
    await new Promise<void>((resolve) => {
      void client!.watchX509Context({ onUpdate: () => void (++updates === 2 && resolve()) }, stop.signal);
    });
    stop.abort();
    expect(n).toBe(2);
  });

  it('stops a watch on INVALID_ARGUMENT without retrying', async () => {
    fake = await startFakeWorkloadAPI({
      FetchX509SVID: (call) => call.emit('error', grpcError(grpc.status.INVALID_ARGUMENT, 'security header missing from request')),
    });
    client = new WorkloadAPIClient({ address: fake.address, backoff: FAST });
    const err = await client.watchX509Context({ onUpdate: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkloadAPIError);
    expect(err).toMatchObject({ status: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' });
    await new Promise((r) => setTimeout(r, 60));
    expect(fake.calls).toHaveLength(1);
  });

  it('ends a watch quietly when its signal aborts', async () => {
    fake = await startFakeWorkloadAPI({ FetchX509SVID: () => {} });
    client = new WorkloadAPIClient({ address: fake.address });
    const stop = new AbortController();
    const watch = client.watchX509Context({ onUpdate: () => {} }, stop.signal);
    setTimeout(() => stop.abort(), 50);
    await expect(watch).resolves.toBeUndefined();
  });

  it('fetches JWT-SVIDs and bundles, and returns validated claims', async () => {
    const ca = await TestCA.create('example.org');
    const token = await ca.createJWTSVID('spiffe://example.org/w', ['aud1']);
    fake = await startFakeWorkloadAPI({
      FetchJWTSVID: (_call, cb) => cb!(null, { svids: [{ spiffe_id: 'spiffe://example.org/w', svid: token, hint: '' }] }),
      FetchJWTBundles: (call) => call.write({ bundles: { 'spiffe://example.org': Buffer.from(ca.jwtBundle().toJWKS()) } }),
      ValidateJWTSVID: (_call, cb) =>
        cb!(null, { spiffe_id: 'spiffe://example.org/w', claims: { fields: { sub: { stringValue: 'spiffe://example.org/w' }, aud: { listValue: { values: [{ stringValue: 'aud1' }] } } } } }),
    });
    client = new WorkloadAPIClient({ address: fake.address });
    const svid = await client.fetchJWTSVID({ audience: ['aud1'], subject: 'spiffe://example.org/w' });
    expect(svid.id.toString()).toBe('spiffe://example.org/w');
    expect(fake.calls[0]!.request).toMatchObject({ audience: ['aud1'], spiffe_id: 'spiffe://example.org/w' });
    const bundles = await client.fetchJWTBundles();
    expect(bundles.bundleFor(TD)?.size).toBeGreaterThan(0);
    const validated = await client.validateJWTSVID(token, 'aud1');
    expect(validated.claims).toEqual({ sub: 'spiffe://example.org/w', aud: ['aud1'] });
    expect(fake.calls[2]!.request).toMatchObject({ svid: token, audience: 'aud1' });
  });
});

describe('X509Source', () => {
  it('resolves after the first update and serves the default SVID and bundles', async () => {
    const resp = await x509Response(['spiffe://example.org/first', 'spiffe://example.org/second']);
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.write(resp) });
    const source = await X509Source.create({ address: fake.address });
    expect(source.getX509SVID().id.toString()).toBe('spiffe://example.org/first');
    expect(source.getX509BundleForTrustDomain(TD).trustDomain.name).toBe('example.org');
    expect(() => source.getX509BundleForTrustDomain(TrustDomain.parse('nowhere.test'))).toThrow(/no X.509 bundle/);
    await source.close();
    expect(() => source.getX509SVID()).toThrow(SourceClosedError);
  });

  it('rejects create when the agent refuses the call with INVALID_ARGUMENT', async () => {
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.emit('error', grpcError(grpc.status.INVALID_ARGUMENT, 'nope')) });
    await expect(X509Source.create({ address: fake.address })).rejects.toMatchObject({ status: grpc.status.INVALID_ARGUMENT });
  });

  it('gives up waiting when the create signal aborts', async () => {
    fake = await startFakeWorkloadAPI({ FetchX509SVID: () => {} });
    await expect(X509Source.create({ address: fake.address, signal: AbortSignal.timeout(50) })).rejects.toBeInstanceOf(SourceClosedError);
  });
});

describe('JWTSource', () => {
  it('keeps JWT bundles and fetches SVIDs until closed', async () => {
    const ca = await TestCA.create('example.org');
    const token = await ca.createJWTSVID('spiffe://example.org/w', ['x']);
    fake = await startFakeWorkloadAPI({
      FetchJWTBundles: (call) => call.write({ bundles: { 'example.org': Buffer.from(ca.jwtBundle().toJWKS()) } }),
      FetchJWTSVID: (_call, cb) => cb!(null, { svids: [{ spiffe_id: 'spiffe://example.org/w', svid: token, hint: '' }] }),
    });
    const source = await JWTSource.create({ address: fake.address });
    expect(source.getJWTBundleForTrustDomain(TD).trustDomain.name).toBe('example.org');
    expect((await source.fetchJWTSVID({ audience: ['x'] })).token).toBe(token);
    await source.close();
    expect(() => source.getBundles()).toThrow(SourceClosedError);
    await expect(source.fetchJWTSVID({ audience: ['x'] })).rejects.toBeInstanceOf(SourceClosedError);
  });
});
