import * as grpc from '@grpc/grpc-js';
import { readFileSync, statSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCA } from '../../helpers/test-ca.js';
import { concatDer } from '../../../src/svid/index.js';
import type { CliIO } from '../../../src/cli/flags.js';
import { run as fetchX509 } from '../../../src/cli/commands/api-fetch-x509.js';
import { run as fetchJWT } from '../../../src/cli/commands/api-fetch-jwt.js';
import { run as validateJWT } from '../../../src/cli/commands/api-validate-jwt.js';
import { run as watch } from '../../../src/cli/commands/api-watch.js';
import { run as healthcheck } from '../../../src/cli/commands/healthcheck.js';
import { resolveSocket } from '../../../src/cli/commands/api-common.js';
import { formatGoDuration } from '../../../src/duration.js';
import { grpcError, startFakeWorkloadAPI, type FakeWorkloadAPI } from '../sdk/fake-workload-api.js';

// The verbs run against the in-test FAKE Workload API (test/unit/sdk/fake-workload-api.ts).

function io(env: NodeJS.ProcessEnv = {}, signal = new AbortController().signal): CliIO & { out(): string; err(): string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d) => (o += String(d)));
  stderr.on('data', (d) => (e += String(d)));
  return { stdout, stderr, env, signal, out: () => o, err: () => e };
}

async function x509Response() {
  const ca = await TestCA.create('example.org');
  const fed = await TestCA.create('federated.test');
  const s = await ca.createX509SVID('spiffe://example.org/workload');
  return {
    svids: [{ spiffe_id: 'spiffe://example.org/workload', x509_svid: Buffer.from(concatDer(s.chain)), x509_svid_key: Buffer.from(s.privateKeyPkcs8), bundle: Buffer.from(ca.bundle().toDer()), hint: 'internal' }],
    crl: [],
    federated_bundles: { 'spiffe://federated.test': Buffer.from(fed.bundle().toDer()) },
  };
}

let fake: FakeWorkloadAPI | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

describe('api fetch x509', () => {
  it('prints the SVIDs the way spire-agent does, with a serial line', async () => {
    const resp = await x509Response();
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.write(resp) });
    const t = io();
    expect(await fetchX509(['-socketPath', fake.socketPath], t)).toBe(0);
    const out = t.out();
    expect(out).toMatch(/^Received 1 svid after [\d.]+(ms|µs|s)\n\n/);
    expect(out).toContain('SPIFFE ID:\t\tspiffe://example.org/workload\n');
    expect(out).toContain('Hint:\t\t\tinternal\n');
    expect(out).toMatch(/SVID Serial:\t\t\d+\n/);
    expect(out).toMatch(/SVID Valid After:\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC\n/);
    expect(out).toMatch(/SVID Valid Until:\t.* \+0000 UTC\n/);
    expect(out).toMatch(/CA #1 Valid After:\t.* \+0000 UTC\n/);
    expect(out).toMatch(/\[spiffe:\/\/federated.test\] CA #1 Valid Until:\t.* \+0000 UTC\n/);
    expect(fake.calls[0]!.header).toEqual(['true']);
  });

  it('writes svid, key (0600), bundle and federated bundle files with -write', async () => {
    const resp = await x509Response();
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.write(resp) });
    const t = io();
    expect(await fetchX509(['-socketPath', fake.socketPath, '-silent', '-write', fake.dir], t)).toBe(0);
    expect(t.out()).toBe(
      [
        `Writing SVID #0 to file ${fake.dir}/svid.0.pem.`,
        `Writing key #0 to file ${fake.dir}/svid.0.key.`,
        `Writing bundle #0 to file ${fake.dir}/bundle.0.pem.`,
        `Writing federated bundle #0 for trust domain spiffe://federated.test to file ${fake.dir}/federated_bundle.0.0.pem.`,
        '',
      ].join('\n'),
    );
    expect(statSync(`${fake.dir}/svid.0.key`).mode & 0o777).toBe(0o600);
    expect(statSync(`${fake.dir}/svid.0.pem`).mode & 0o777).toBe(0o644);
    expect(readFileSync(`${fake.dir}/svid.0.key`, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(readFileSync(`${fake.dir}/bundle.0.pem`, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(readFileSync(`${fake.dir}/federated_bundle.0.0.pem`, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
  });

  it('prints the raw response as JSON with base64 bytes for -output json', async () => {
    const resp = await x509Response();
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.write(resp) });
    const t = io();
    expect(await fetchX509(['-socketPath', fake.socketPath, '-output', 'json'], t)).toBe(0);
    const doc = JSON.parse(t.out());
    expect(Object.keys(doc)).toEqual(['crl', 'federated_bundles', 'svids']);
    expect(doc.svids[0].spiffe_id).toBe('spiffe://example.org/workload');
    expect(Buffer.from(doc.svids[0].x509_svid, 'base64').equals(resp.svids[0]!.x509_svid)).toBe(true);
  });

  it('prints the gRPC status and exits 1 when the agent has no identity for the caller', async () => {
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.emit('error', grpcError(grpc.status.PERMISSION_DENIED, 'no identity issued')) });
    const t = io();
    expect(await fetchX509(['-socketPath', fake.socketPath], t)).toBe(1);
    expect(t.err()).toBe('rpc error: code = PermissionDenied desc = no identity issued\n');
  });

  it('finds the socket through SPIFFE_ENDPOINT_SOCKET when -socketPath is not given', async () => {
    const resp = await x509Response();
    fake = await startFakeWorkloadAPI({ FetchX509SVID: (call) => call.write(resp) });
    const t = io({ SPIFFE_ENDPOINT_SOCKET: fake.address });
    expect(await fetchX509(['-silent'], t)).toBe(0);
    expect(fake.calls).toHaveLength(1);
  });

  it('gives up after -timeout when the agent never answers', async () => {
    fake = await startFakeWorkloadAPI({ FetchX509SVID: () => {} });
    const t = io();
    expect(await fetchX509(['-socketPath', fake.socketPath, '-timeout', '100ms'], t)).toBe(1);
    expect(t.err()).toMatch(/code = DeadlineExceeded/);
  });
});

describe('socket resolution', () => {
  it('takes an explicit flag over the environment, and SPIRE_AGENT_PUBLIC_SOCKET over SPIFFE_ENDPOINT_SOCKET', () => {
    const env = { SPIRE_AGENT_PUBLIC_SOCKET: '/a.sock', SPIFFE_ENDPOINT_SOCKET: 'unix:///b.sock' };
    expect(resolveSocket({ socketPath: '/x.sock' }, env)).toBe('/x.sock');
    expect(resolveSocket({ socketPath: '/tmp/spire-agent/public/api.sock' }, env)).toBe('/a.sock');
    expect(resolveSocket({ socketPath: '/tmp/spire-agent/public/api.sock' }, { SPIFFE_ENDPOINT_SOCKET: 'unix:///b.sock' })).toBe('unix:///b.sock');
    expect(resolveSocket({ socketPath: '/tmp/spire-agent/public/api.sock', instance: 'i1' }, { SPIRE_AGENT_PUBLIC_SOCKET_TEMPLATE: '/run/%i.sock' })).toBe('/run/i1.sock');
  });

  it('renders durations like Go', () => {
    expect([0n, 999n, 1_500n, 2_345_678n, 1_500_000_000n, 3_723_000_000_000n].map(formatGoDuration)).toEqual(['0s', '999ns', '1.5µs', '2.345678ms', '1.5s', '1h2m3s']);
  });
});

describe('api fetch jwt', () => {
  it('requires -audience', async () => {
    const t = io();
    expect(await fetchJWT(['-socketPath', '/nonexistent.sock'], t)).toBe(1);
    expect(t.err()).toBe('audience must be specified\n');
  });

  it('prints tokens, hints and bundles like spire-agent', async () => {
    const ca = await TestCA.create('example.org');
    const token = await ca.createJWTSVID('spiffe://example.org/w', ['a', 'b']);
    const jwks = Buffer.from(ca.jwtBundle().toJWKS());
    fake = await startFakeWorkloadAPI({
      FetchJWTBundles: (call) => call.write({ bundles: { 'spiffe://example.org': jwks } }),
      FetchJWTSVID: (_c, cb) => cb!(null, { svids: [{ spiffe_id: 'spiffe://example.org/w', svid: token, hint: 'h' }] }),
    });
    const t = io();
    expect(await fetchJWT(['-socketPath', fake.socketPath, '-audience', 'a,b', '-spiffeID', 'spiffe://example.org/w'], t)).toBe(0);
    expect(t.out()).toBe(`token(spiffe://example.org/w):\n\t${token}\nhint(spiffe://example.org/w):\n\th\nbundle(spiffe://example.org):\n\t${jwks.toString()}\n`);
    expect(fake.calls[1]!.request).toMatchObject({ audience: ['a', 'b'], spiffe_id: 'spiffe://example.org/w' });
  });
});

describe('api validate jwt', () => {
  it('prints "SVID is valid.", the SPIFFE ID and the claims', async () => {
    fake = await startFakeWorkloadAPI({
      ValidateJWTSVID: (_c, cb) => cb!(null, { spiffe_id: 'spiffe://example.org/w', claims: { fields: { sub: { stringValue: 'spiffe://example.org/w' }, aud: { listValue: { values: [{ stringValue: 'a' }] } } } } }),
    });
    const t = io();
    expect(await validateJWT(['-socketPath', fake.socketPath, '-audience', 'a', '-svid', 'tok'], t)).toBe(0);
    expect(t.out()).toBe('SVID is valid.\nSPIFFE ID : spiffe://example.org/w\nClaims    : {"aud":["a"],"sub":"spiffe://example.org/w"}\n');
  });

  it('says "SVID is not valid" when the agent answers InvalidArgument', async () => {
    fake = await startFakeWorkloadAPI({ ValidateJWTSVID: (_c, cb) => cb!(grpcError(grpc.status.INVALID_ARGUMENT, 'token has expired')) });
    const t = io();
    expect(await validateJWT(['-socketPath', fake.socketPath, '-audience', 'a', '-svid', 'tok'], t)).toBe(1);
    expect(t.err()).toBe('SVID is not valid: token has expired\n');
  });
});

describe('api watch', () => {
  it('prints each update until the signal aborts, then exits 0', async () => {
    const resp = await x509Response();
    fake = await startFakeWorkloadAPI({
      FetchX509SVID: (call) => {
        call.write(resp);
        call.write(resp);
      },
    });
    const stop = new AbortController();
    const t = io({}, stop.signal);
    const done = watch(['-socketPath', fake.socketPath], t);
    for (let i = 0; i < 100 && (t.out().match(/Received 1 svid/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    stop.abort();
    expect(await done).toBe(0);
    expect((t.out().match(/Received 1 svid after/g) ?? []).length).toBe(2);
    expect(t.out()).toContain('[federated.test] CA #1 Valid After:\t');
  });
});

describe('healthcheck', () => {
  /** grpc.health.v1 as the agent serves it on its socket (our own service implementation). */
  async function healthServer(status: () => 'SERVING' | 'NOT_SERVING'): Promise<{ socketPath: string; close(): void }> {
    const { mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { loadProto } = await import('../../../src/endpoints/proto.js');
    const { healthService } = await import('../../../src/endpoints/health.js');
    const pkg = loadProto('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: { Health: { service: grpc.ServiceDefinition } } } } };
    const server = new grpc.Server();
    server.addService(pkg.grpc.health.v1.Health.service, healthService(status));
    const socketPath = join(mkdtempSync(join(tmpdir(), 'health-')), 'api.sock');
    await new Promise<void>((r, j) => server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())));
    return { socketPath, close: () => server.forceShutdown() };
  }

  it('reports healthy when the agent says SERVING on grpc.health.v1, as spire-agent checks it', async () => {
    const h = await healthServer(() => 'SERVING');
    const t = io();
    expect(await healthcheck(['-socketPath', h.socketPath, '-verbose'], t)).toBe(0);
    expect(t.out()).toBe('Checking agent health...\nAgent is healthy.\n');
    h.close();
  });

  it('reports unhealthy while the agent says NOT_SERVING', async () => {
    const h = await healthServer(() => 'NOT_SERVING');
    const t = io();
    expect(await healthcheck(['-socketPath', h.socketPath], t)).toBe(1);
    expect(t.err()).toMatch(/Agent is unhealthy/);
    h.close();
  });

  it('reports unhealthy when nothing listens on the socket', async () => {
    const t = io();
    expect(await healthcheck(['-socketPath', '/nonexistent/api.sock', '-verbose'], t)).toBe(1);
    expect(t.err()).toMatch(/^Failed to check health: .*\nAgent is unhealthy: unable to determine health\n$/);
  });

  it('with -shallow only dials the socket', async () => {
    fake = await startFakeWorkloadAPI({});
    const t = io();
    expect(await healthcheck(['-socketPath', fake.socketPath, '-shallow'], t)).toBe(0);
    expect(fake.calls).toHaveLength(0);
    expect(await healthcheck(['-socketPath', '/nonexistent/api.sock', '-shallow'], io())).toBe(1);
  });
});
