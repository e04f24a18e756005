/**
 * The real daemon on a temporary socket; callers are real processes under distinct
 * uids (the test runner is root), so the identity under test comes from SO_PEERCRED.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProto } from '../../src/endpoints/proto.js';
import { AgentProcess, cli, field, uidEntry } from '../helpers/agent-process.js';

let agent: AgentProcess;
const A = { uid: 1101, gid: 1101 };
const B = { uid: 1102, gid: 1102 };
const NOBODY = { uid: 1103, gid: 1103 };

beforeAll(async () => {
  agent = await AgentProcess.start({
    entries: [
      uidEntry('/a', A.uid, { hint: 'primary' }),
      uidEntry('/b', B.uid),
      uidEntry('/b2', B.uid, { dns_names: ['b.example.org'] }),
    ],
  });
});
afterAll(async () => agent?.stop());

const sock = (): string[] => ['-socketPath', agent.socketPath];

describe('Workload API: X.509-SVIDs', () => {
  it('gives each uid exactly its own identities', async () => {
    const a = await cli(['api', 'fetch', 'x509', ...sock()], A);
    expect(a.stderr).toBe('');
    expect(field(a.stdout, 'SPIFFE ID')).toEqual(['spiffe://example.org/a']);
    const b = await cli(['api', 'fetch', 'x509', ...sock()], B);
    expect(field(b.stdout, 'SPIFFE ID').sort()).toEqual(['spiffe://example.org/b', 'spiffe://example.org/b2']);
  });

  it('denies a uid with no entry with PermissionDenied and logs why', async () => {
    const r = await cli(['api', 'fetch', 'x509', ...sock(), '-timeout', '2s'], NOBODY);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/PermissionDenied|no identity issued/);
    const denial = agent.logs.find((l) => l.includes('decision=denied') && l.includes(`uid=${NOBODY.uid}`));
    expect(denial).toMatch(/reason="no registration entry matches the caller"/);
  });

  it('writes svid, key (0600) and bundle files like spire-agent with -write', async () => {
    const { mkdtempSync, statSync, chmodSync, readFileSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/spiffe-write-');
    chmodSync(dir, 0o777);
    const r = await cli(['api', 'fetch', 'x509', ...sock(), '-write', dir], A);
    expect(r.code).toBe(0);
    expect(statSync(`${dir}/svid.0.key`).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${dir}/svid.0.pem`, 'utf8')).toMatch(/BEGIN CERTIFICATE/);
    expect(readFileSync(`${dir}/bundle.0.pem`, 'utf8')).toMatch(/BEGIN CERTIFICATE/);
  });
});

describe('Workload API: JWT-SVIDs', () => {
  it('mints a JWT-SVID for the caller and validates it for another workload', async () => {
    const r = await cli(['api', 'fetch', 'jwt', ...sock(), '-audience', 'svc-x,svc-y'], A);
    expect(r.code).toBe(0);
    const token = r.stdout.match(/\beyJ[\w-]+\.[\w-]+\.[\w-]+/)?.[0];
    expect(token).toBeDefined();
    const payload = JSON.parse(Buffer.from(token!.split('.')[1]!, 'base64url').toString());
    expect(payload).toMatchObject({ sub: 'spiffe://example.org/a', aud: ['svc-x', 'svc-y'] });
    const v = await cli(['api', 'validate', 'jwt', ...sock(), '-audience', 'svc-y', '-svid', token!], B);
    expect(v.stdout).toMatch(/SVID is valid/);
    const wrongAud = await cli(['api', 'validate', 'jwt', ...sock(), '-audience', 'other', '-svid', token!], B);
    expect(wrongAud.code).not.toBe(0);
    expect(wrongAud.stdout + wrongAud.stderr).toMatch(/not valid.*audience/s);
  });

  it('never logs a whole token', async () => {
    const r = await cli(['api', 'fetch', 'jwt', ...sock(), '-audience', 'log-check'], A);
    const token = r.stdout.match(/\beyJ[\w-]+\.[\w-]+\.[\w-]+/)![0];
    expect(agent.logs.join('\n')).not.toContain(token);
    expect(agent.logs.join('\n')).not.toContain(token.split('.')[2]);
  });
});

describe('Workload API: protocol rules', () => {
  const wl = loadProto('spiffe/workload/workload.proto') as unknown as Record<string, grpc.ServiceClientConstructor>;
  const client = (): grpc.Client & Record<string, (...a: unknown[]) => unknown> =>
    new wl.SpiffeWorkloadAPI!(`unix://${agent.socketPath}`, grpc.credentials.createInsecure()) as never;

  const unary = (c: ReturnType<typeof client>, method: string, req: unknown, md: grpc.Metadata): Promise<{ err?: grpc.ServiceError; res?: unknown }> =>
    new Promise((r) => (c[method] as (...a: unknown[]) => void)(req, md, (err: grpc.ServiceError | null, res: unknown) => r({ err: err ?? undefined, res })));

  it.each(['absent', 'True', '1'])('refuses a call whose security header is %s with InvalidArgument', async (value) => {
    const md = new grpc.Metadata();
    if (value !== 'absent') md.set('workload.spiffe.io', value);
    const c = client();
    const { err } = await unary(c, 'FetchJWTSVID', { audience: ['x'] }, md);
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toBe('security header missing from request');
    const stream = (c.FetchX509SVID as (r: unknown, m: grpc.Metadata) => grpc.ClientReadableStream<unknown>)({}, md);
    const code = await new Promise<number>((r) => stream.on('error', (e: grpc.ServiceError) => r(e.code)));
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    c.close();
  });

  it('answers FetchJWTSVID without an audience with InvalidArgument, and WIT methods with Unimplemented', async () => {
    const md = new grpc.Metadata();
    md.set('workload.spiffe.io', 'true');
    const c = client();
    expect((await unary(c, 'FetchJWTSVID', { audience: [] }, md)).err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const wit = (c.FetchWITSVID as (r: unknown, m: grpc.Metadata) => grpc.ClientReadableStream<unknown>)({}, md);
    expect(await new Promise<number>((r) => wit.on('error', (e: grpc.ServiceError) => r(e.code)))).toBe(grpc.status.UNIMPLEMENTED);
    c.close();
  });

  it('serves bundles as concatenated DER keyed by trust domain ID, and JWKS with a kid on every key', async () => {
    const md = new grpc.Metadata();
    md.set('workload.spiffe.io', 'true');
    const c = client();
    // The test process is root and has no entry: with no identity the bundle RPCs are denied.
    const s = (c.FetchX509Bundles as (r: unknown, m: grpc.Metadata) => grpc.ClientReadableStream<unknown>)({}, md);
    expect(await new Promise<number>((r) => s.on('error', (e: grpc.ServiceError) => r(e.code)))).toBe(grpc.status.PERMISSION_DENIED);
    c.close();
  });
});
