/**
 * The admin socket through the real daemon, called by a real client process
 * (test/helpers/admin-client.mjs, grpc-js with the repo's protos) under distinct uids:
 * the Delegated Identity API for an authorized delegate (target by selectors and by
 * pid, JWT-SVIDs, bundles), denial of a non-delegate, the selectors-xor-pid rule,
 * Debug GetInfo, and the Logger API changing what the daemon logs. The socket is 0770
 * root:root, so the client processes run with gid 0 and their own uid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, TD, collect, uidEntry } from '../helpers/agent-process.js';
import { sleeper } from '../helpers/processes.js';

const CLIENT = join(REPO, 'test/helpers/admin-client.mjs');
const DELEGATE = { uid: 1421, gid: 0 };
const OUTSIDER = { uid: 1422, gid: 0 };
const TARGET_UID = 1423;

type Line = { response?: Record<string, unknown>; status?: { code: string; details: string } };

async function admin(socket: string, ids: { uid: number; gid: number }, service: string, method: string, req: unknown, count = 1): Promise<Line[]> {
  const child = spawn(process.execPath, [CLIENT, socket, service, method, JSON.stringify(req), String(count)], { stdio: ['ignore', 'pipe', 'pipe'], ...ids });
  const r = await collect(child, 15_000);
  if (r.stderr) throw new Error(`admin client failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

const X509_SVIDS = (x: unknown): { x509_svid: { cert_chain: string[]; id: { trust_domain: string; path: string }; expires_at: string }; x509_svid_key: string }[] =>
  (x as { x509_svids?: never[] }).x509_svids ?? [];

describe('admin socket', () => {
  let agent: AgentProcess;
  let adminSocket: string;
  let target: ChildProcess;

  const ENTRIES = [
    uidEntry('/delegate', DELEGATE.uid),
    uidEntry('/outsider', OUTSIDER.uid),
    uidEntry('/target', TARGET_UID),
    uidEntry('/quiet', 1424),
    uidEntry('/loud', 1425),
  ];

  beforeAll(async () => {
    const dir = await mkdtemp('/tmp/spiffe-agent-it-');
    adminSocket = `${dir}/admin/admin.sock`;
    agent = await AgentProcess.start({
      dir,
      entries: ENTRIES,
      agent: `admin_socket_path = "${adminSocket}"\nauthorized_delegates = ["spiffe://${TD}/delegate"]`,
    });
    target = sleeper({ uid: TARGET_UID, gid: TARGET_UID });
  });

  afterAll(async () => {
    target?.kill('SIGKILL');
    await agent?.stop();
  });

  it('is a socket with mode 0770', async () => {
    const st = await stat(adminSocket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o770);
  });

  it('gives a delegate the X.509-SVID of a workload named by selectors', async () => {
    const [line] = await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'SubscribeToX509SVIDs', { selectors: [{ type: 'unix', value: `uid:${TARGET_UID}` }] });
    const svids = X509_SVIDS(line?.response);
    expect(svids).toHaveLength(1);
    expect(svids[0]!.x509_svid.id).toEqual({ trust_domain: TD, path: '/target' });
    const leaf = new X509Certificate(Buffer.from(svids[0]!.x509_svid.cert_chain[0]!, 'base64'));
    expect(leaf.subjectAltName).toContain(`URI:spiffe://${TD}/target`);
    expect(Number(svids[0]!.x509_svid.expires_at) * 1000).toBeGreaterThan(Date.now());
    expect(Buffer.from(svids[0]!.x509_svid_key, 'base64').length).toBeGreaterThan(32);
  });

  it('gives a delegate the X.509-SVID of a workload named by pid, attested by the agent', async () => {
    const [line] = await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'SubscribeToX509SVIDs', { pid: target.pid });
    expect(X509_SVIDS(line?.response).map((s) => s.x509_svid.id.path)).toEqual(['/target']);
  });

  it('denies a caller that is not an authorized delegate', async () => {
    const [line] = await admin(adminSocket, OUTSIDER, 'DelegatedIdentity', 'SubscribeToX509SVIDs', { selectors: [{ type: 'unix', value: `uid:${TARGET_UID}` }] });
    expect(line?.status?.code).toBe('PERMISSION_DENIED');
    const [jwt] = await admin(adminSocket, OUTSIDER, 'DelegatedIdentity', 'FetchJWTSVIDs', { audience: ['a'], selectors: [{ type: 'unix', value: `uid:${TARGET_UID}` }] });
    expect(jwt?.status?.code).toBe('PERMISSION_DENIED');
    expect(agent.logs.some((l) => l.includes('DelegatedIdentity.SubscribeToX509SVIDs') && l.includes('decision=denied') && l.includes(`uid=${OUTSIDER.uid}`))).toBe(true);
  });

  it('rejects selectors and pid together with InvalidArgument', async () => {
    const [line] = await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'SubscribeToX509SVIDs', { selectors: [{ type: 'unix', value: `uid:${TARGET_UID}` }], pid: target.pid });
    expect(line?.status).toEqual({ code: 'INVALID_ARGUMENT', details: 'cannot specify both selectors and pid' });
  });

  it('mints a JWT-SVID for a target', async () => {
    const [line] = await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'FetchJWTSVIDs', { audience: ['spire-test'], selectors: [{ type: 'unix', value: `uid:${TARGET_UID}` }] });
    const svids = (line?.response as { svids: { token: string; id: { path: string } }[] }).svids;
    expect(svids.map((s) => s.id.path)).toEqual(['/target']);
    const claims = JSON.parse(Buffer.from(svids[0]!.token.split('.')[1]!, 'base64url').toString()) as { sub: string; aud: string | string[] };
    expect(claims.sub).toBe(`spiffe://${TD}/target`);
    expect([claims.aud].flat()).toEqual(['spire-test']);
    const [empty] = await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'FetchJWTSVIDs', { selectors: [{ type: 'unix', value: `uid:${TARGET_UID}` }] });
    expect(empty?.status?.code).toBe('INVALID_ARGUMENT');
  });

  it('streams the bundles of every trust domain the agent knows', async () => {
    const [x509] = await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'SubscribeToX509Bundles', {});
    expect(Object.keys((x509?.response as { ca_certificates: object }).ca_certificates)).toEqual([`spiffe://${TD}`]);
    const [jwt] = await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'SubscribeToJWTBundles', {});
    const jwks = JSON.parse(Buffer.from((jwt?.response as { bundles: Record<string, string> }).bundles[`spiffe://${TD}`]!, 'base64').toString()) as { keys: unknown[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
  });

  it('answers Debug GetInfo', async () => {
    const [line] = await admin(adminSocket, DELEGATE, 'Debug', 'GetInfo', {});
    const info = line?.response as { uptime?: number; cached_x509_svids_count?: number; svid_chain?: unknown[] };
    expect(info.cached_x509_svids_count).toBeGreaterThanOrEqual(1);
    expect(info.uptime ?? 0).toBeGreaterThanOrEqual(0);
    expect(info.svid_chain ?? []).toEqual([]);
  });

  it('changes what the daemon logs through the Logger API', async () => {
    const [got] = await admin(adminSocket, DELEGATE, 'Logger', 'GetLogger', {});
    expect(got?.response).toEqual({ current_level: 'DEBUG', launch_level: 'DEBUG' });
    const [set] = await admin(adminSocket, DELEGATE, 'Logger', 'SetLogLevel', { new_level: 'INFO' });
    expect(set?.response).toEqual({ current_level: 'INFO', launch_level: 'DEBUG' });
    let mark = agent.logs.length;
    // Signing a new SVID logs "X.509-SVID issued" at debug; the response carries that SVID, so it was signed before.
    await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'SubscribeToX509SVIDs', { selectors: [{ type: 'unix', value: 'uid:1424' }] });
    await admin(adminSocket, DELEGATE, 'Logger', 'SetLogLevel', { new_level: 'DEBUG' });
    // Everything logged for the subscription comes before the level change's own line.
    const changed = await agent.logged((l) => l.includes('Log level changed through the Logger API') && l.includes('to=debug'), 30_000, 'the level change', mark);
    expect(agent.logs.slice(mark, changed).filter((l) => l.includes('level=debug'))).toEqual([]);
    mark = agent.logs.length;
    await admin(adminSocket, DELEGATE, 'DelegatedIdentity', 'SubscribeToX509SVIDs', { selectors: [{ type: 'unix', value: 'uid:1425' }] });
    await agent.logged((l) => l.includes('level=debug') && l.includes('X.509-SVID issued'), 30_000, 'the debug line of the new SVID', mark);
    const [unspecified] = await admin(adminSocket, DELEGATE, 'Logger', 'SetLogLevel', { new_level: 'UNSPECIFIED' });
    expect(unspecified?.status?.code).toBe('INVALID_ARGUMENT');
    await admin(adminSocket, DELEGATE, 'Logger', 'SetLogLevel', { new_level: 'WARN' });
    const [reset] = await admin(adminSocket, DELEGATE, 'Logger', 'ResetLogLevel', {});
    expect(reset?.response).toEqual({ current_level: 'DEBUG', launch_level: 'DEBUG' });
  });

  it('ends an X.509 stream with PermissionDenied once the delegate loses its entry', async () => {
    const child = spawn(
      process.execPath,
      [CLIENT, adminSocket, 'DelegatedIdentity', 'SubscribeToX509SVIDs', JSON.stringify({ selectors: [{ type: 'unix', value: `uid:${TARGET_UID}` }] }), '3'],
      { stdio: ['ignore', 'pipe', 'pipe'], ...DELEGATE },
    );
    const done = collect(child, 30_000);
    // The stream is open once its first response is out; then the delegate loses its entry.
    await new Promise<void>((resolve) => child.stdout!.on('data', (c: Buffer) => c.toString().includes('"response"') && resolve()));
    await agent.writeEntries(ENTRIES.filter((e) => !e.spiffe_id.endsWith('/delegate')));
    const lines = (await done).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
    await agent.writeEntries(ENTRIES);
    expect(lines.filter((l) => l.response)).toHaveLength(1);
    expect(lines.at(-1)?.status?.code).toBe('PERMISSION_DENIED');
  });
});

describe('admin socket placement', () => {
  it('refuses to start with the admin socket under the public socket directory', async () => {
    const dir = await mkdtemp('/tmp/spiffe-agent-it-');
    try {
      await expect(AgentProcess.start({ dir, entries: [], agent: `admin_socket_path = "${dir}/public/private/admin.sock"` })).rejects.toThrow(
        /admin socket cannot be in the same directory or a subdirectory as that containing the Workload API socket/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
