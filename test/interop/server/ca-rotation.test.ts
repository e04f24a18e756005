/**
 * Server CA rotation with `spire-server localauthority x509|jwt prepare/activate/taint/revoke`,
 * watched through real go-spiffe workloads of both agents on ONE server, step by step:
 * prepared authority appears in bundles → activated → old one tainted forces every SVID onto the
 * new CA (and JWT-SVIDs onto the new key) → old one revoked disappears from bundles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  agentConfFor,
  fetchX509,
  goClientRun,
  startAgent,
  startSpireServer,
  waitFor,
  waitForSvid,
  waitForX509,
  type AgentHandle,
  type AgentKind,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
const agents = new Map<AgentKind, { agent: AgentHandle; svidId: string }>();
const TDID = 'spiffe://example.org';
const x509 = { old: '', oldFp: '', prepared: '', newFp: '' };
const jwt = { old: '', oldKid: '', prepared: '', newKid: '' };

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s' }));
});
afterAll(() => cleanup.run());

function get(kind: AgentKind): { agent: AgentHandle; svidId: string } {
  const a = agents.get(kind);
  if (!a) throw new Error(`${kind} did not start in the first step; later steps cannot run`);
  return a;
}

async function jwtKid(agent: AgentHandle): Promise<{ kid: string; bundleKids: string[] }> {
  const c = await goClientRun(agent, UID_A, ['canon', '-timeout', '10s']);
  if (!c.ok) throw new Error(`canon: ${JSON.stringify(c)}`);
  return { kid: c.jwtSvids[0]?.kid ?? '', bundleKids: (c.jwtBundles[TDID] ?? []).map((k: { kid: string }) => k.kid) };
}

describe.skipIf(plan.skip)('server CA rotation reaches workloads in order', () => {
  it.each(KINDS)('%s: attests and serves a workload from the initial CA', async (kind) => {
    const t = tag(kind, 'rot');
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    await server.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A)]);
    const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: token }, t)));
    const r = await waitForSvid(agent, UID_A, id(`/${t}/a`));
    agents.set(kind, { agent, svidId: id(`/${t}/a`) });
    expect(r.bundles[TDID]).toHaveLength(1);
    x509.oldFp ||= r.bundles[TDID]![0]!;
    expect(r.svids[0]!.issuer).toBe(x509.oldFp);
  });

  it('x509 prepare', async () => {
    x509.old = (await server.authorities('x509')).active!.authority_id;
    x509.prepared = (await server.prepareAuthority('x509')).authority_id;
    expect(x509.prepared).not.toBe(x509.old);
  });

  it.each(KINDS)('%s: the prepared X.509 authority reaches the bundle; SVIDs still from the old CA', async (kind) => {
    const { agent } = get(kind);
    const r = await waitForX509(agent, UID_A, 'two X.509 authorities in the bundle', (x) => x.ok && x.bundles[TDID]?.length === 2);
    x509.newFp ||= r.bundles[TDID]!.find((f) => f !== x509.oldFp)!;
    expect(r.bundles[TDID]).toContain(x509.oldFp);
    expect(r.bundles[TDID]).toContain(x509.newFp);
    expect(r.svids[0]!.issuer).toBe(x509.oldFp);
  });

  it('x509 activate the prepared authority, then taint the old one', async () => {
    await server.activateAuthority('x509', x509.prepared);
    await server.taintAuthority('x509', x509.old);
  });

  it.each(KINDS)('%s: tainting forces the workload SVID onto the new CA; both authorities stay in the bundle', async (kind) => {
    const { agent, svidId } = get(kind);
    const r = await waitForX509(
      agent,
      UID_A,
      'the SVID to be re-signed by the new CA',
      (x) => x.ok && x.svids.some((s) => s.id === svidId && s.issuer === x509.newFp),
      { timeoutMs: 120_000 },
    );
    expect(r.svids[0]!.verified, r.svids[0]!.verifyError).toBe(true);
    expect([...r.bundles[TDID]!].sort()).toEqual([x509.oldFp, x509.newFp].sort());
  });

  it('x509 revoke the old authority', async () => {
    await server.revokeAuthority('x509', x509.old);
  });

  it.each(KINDS)('%s: the revoked authority leaves the bundle; the SVID still verifies', async (kind) => {
    const { agent } = get(kind);
    const r = await waitForX509(agent, UID_A, 'only the new CA in the bundle', (x) => x.ok && x.bundles[TDID]?.join() === x509.newFp);
    expect(r.svids[0]!.issuer).toBe(x509.newFp);
    expect(r.svids[0]!.verified, r.svids[0]!.verifyError).toBe(true);
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
  });

  it('jwt prepare', async () => {
    jwt.old = (await server.authorities('jwt')).active!.authority_id;
    jwt.prepared = (await server.prepareAuthority('jwt')).authority_id;
  });

  it.each(KINDS)('%s: the prepared JWT key reaches the JWT bundle; JWT-SVIDs still signed by the old key', async (kind) => {
    const { agent } = get(kind);
    const v = await waitFor('two JWT keys in the bundle', async () => {
      const k = await jwtKid(agent);
      return k.bundleKids.length === 2 ? k : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1000 });
    jwt.oldKid ||= v.kid;
    expect(v.kid).toBe(jwt.oldKid);
    jwt.newKid ||= v.bundleKids.find((k) => k !== jwt.oldKid)!;
    expect(v.bundleKids).toContain(jwt.newKid);
  });

  it('jwt activate the prepared key, then taint the old one', async () => {
    await server.activateAuthority('jwt', jwt.prepared);
    await server.taintAuthority('jwt', jwt.old);
  });

  it.each(KINDS)('%s: after the taint JWT-SVIDs are signed with the new key', async (kind) => {
    const { agent } = get(kind);
    await waitFor('a JWT-SVID with the new kid', async () => ((await jwtKid(agent)).kid === jwt.newKid ? true : undefined), {
      timeoutMs: 90_000,
      intervalMs: 1000,
    });
  });

  it('jwt revoke the old key', async () => {
    await server.revokeAuthority('jwt', jwt.old);
  });

  it.each(KINDS)('%s: the revoked JWT key leaves the JWT bundle', async (kind) => {
    const { agent } = get(kind);
    const v = await waitFor('only the new key in the JWT bundle', async () => {
      const k = await jwtKid(agent);
      return k.bundleKids.join() === jwt.newKid ? k : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1000 });
    expect(v.kid).toBe(jwt.newKid);
    const x = await fetchX509(agent, UID_A);
    expect(x.ok).toBe(true);
  });
});
