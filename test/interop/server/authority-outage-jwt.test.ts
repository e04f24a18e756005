/**
 * What the server authority reports and serves around an outage of the real spire-server
 * v1.13.3: Debug GetInfo shows the agent's SVID chain and the last successful sync; while the
 * server is down a JWT-SVID past half its life is answered from the cache (spire-agent's
 * fallback), X.509 keeps serving, and the agent logs one warning, not one per attempt; once the
 * server is back, a fresh JWT-SVID is issued and the sync time moves again.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UID_A, agentConfFor, agentDir, debugInfo, goClientRun, startAgent, startSpireServer, waitForSvid, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { Cleanup, id, plan, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s' }));
});
afterAll(() => cleanup.run());


async function jwtIat(agent: Parameters<typeof goClientRun>[0]): Promise<{ ok: boolean; iat?: number; raw: unknown }> {
  const r = await goClientRun(agent, UID_A, ['fetch', '-audience', 'spiffe://example.org/outage-aud', '-timeout', '10s']);
  return { ok: r.ok === true, iat: r.jwtSvid?.claims?.iat, raw: r };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(plan.skip)('server authority status and JWT fallback around an outage', () => {
  it('GetInfo shows the agent SVID and sync time; a stale JWT-SVID is served from the cache while the server is down', async () => {
    const alias = id('/node/authority-outage');
    const spiffeId = id('/outage/jwt');
    // 20 s JWT-SVIDs: past half-life (10 s) the agent must ask the server again.
    await server.createEntries([uidEntry(spiffeId, alias, UID_A, { jwt_svid_ttl: 20 })]);
    const dir = await agentDir('ours-outage-jwt');
    const adminSocket = join(dir, 'admin', 'admin.sock');
    const conf = await agentConfFor(server, { dir, joinToken: await server.generateToken(alias), agentExtra: `    admin_socket_path = "${adminSocket}"` });
    const agent = cleanup.add(await startAgent('spiffe-agent', bins, conf));
    await waitForSvid(agent, UID_A, spiffeId);

    const info = await debugInfo(adminSocket);
    expect(info.svid_chain[0]?.id?.path).toMatch(/^\/spire\/agent\/join_token\//);
    expect(info.svid_chain[0]?.id?.trust_domain).toBe('example.org');
    const firstSync = Number(info.last_sync_success);
    expect(Math.abs(firstSync - Date.now() / 1000)).toBeLessThan(30);

    const before = await jwtIat(agent);
    expect(before.ok, JSON.stringify(before.raw)).toBe(true);

    await server.stop();
    const downAt = Date.now();
    await sleep(12_000);
    const during = await jwtIat(agent);
    expect(during.ok, `${JSON.stringify(during.raw)}\n${agent.logTail()}`).toBe(true);
    expect(during.iat, 'the cached JWT-SVID, not a new one').toBe(before.iat);
    // Several sync intervals of outage, one warning.
    await sleep(Math.max(0, 20_000 - (Date.now() - downAt)));
    const warnings = agent.daemon.lines.filter((l) => l.includes('SPIRE server unreachable'));
    expect(warnings, agent.logTail()).toHaveLength(1);

    await server.restart();
    const deadline = Date.now() + 60_000;
    let after = await jwtIat(agent);
    while (!(after.ok && after.iat !== before.iat) && Date.now() < deadline) {
      await sleep(1000);
      after = await jwtIat(agent);
    }
    expect(after.ok && after.iat !== before.iat, `a fresh JWT-SVID after the server returned: ${JSON.stringify(after.raw)}`).toBe(true);
    // The sync loop was backing off; a successful call to the server brings the next sync forward.
    const syncDeadline = Date.now() + 30_000;
    let lastSync = firstSync;
    while (lastSync <= firstSync && Date.now() < syncDeadline) {
      await sleep(1000);
      lastSync = Number((await debugInfo(adminSocket)).last_sync_success);
    }
    expect(lastSync, agent.logTail()).toBeGreaterThan(firstSync);
    expect(agent.daemon.lines.some((l) => l.includes('SPIRE server reachable again'))).toBe(true);
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
  }, 300_000);
});
