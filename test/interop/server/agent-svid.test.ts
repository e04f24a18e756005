/**
 * The agent's own SVID: renewed at half-life with a short agent_ttl (join_token through
 * RenewAgent, x509pop by attesting again), with no gap for workloads and mTLS to the server
 * still working after the old SVID expired; eviction (join_token: cannot re-attest → removes its
 * SVID and exits; x509pop: re-attests and keeps serving) and ban (removes its SVID, exits, refused).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  Watcher,
  agentConfFor,
  makeX509popCA,
  startAgent,
  startSpireServer,
  waitFor,
  waitForSvid,
  type AgentHandle,
  type AgentKind,
  type SpireBinaries,
  type SpireServer,
  type X509popCA,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
let popCA: X509popCA;
const cleanup = new Cleanup();
const AGENT_TTL_S = 60;

beforeAll(async () => {
  bins = plan.require();
  popCA = cleanup.add(await makeX509popCA());
  server = cleanup.add(
    await startSpireServer({
      bins,
      agentTtl: `${AGENT_TTL_S}s`,
      nodeAttestors: { joinToken: true, x509pop: { caBundlePath: popCA.caBundlePath } },
      cacheReloadInterval: '1s',
    }),
  );
});
afterAll(() => cleanup.run());

interface Started {
  agent: AgentHandle;
  agentId: string;
  parent: string;
  t: string;
}

async function startWith(kind: AgentKind, attestor: 'join_token' | 'x509pop', what: string): Promise<Started> {
  const t = tag(kind, `${what}-${attestor === 'x509pop' ? 'pop' : 'jt'}`);
  let agentId: string;
  let parent: string;
  let conf;
  if (attestor === 'join_token') {
    parent = id(`/node/${t}`);
    const token = await server.generateToken(parent);
    agentId = server.agentIdForToken(token);
    conf = await agentConfFor(server, { joinToken: token }, t);
  } else {
    const node = await popCA.issueNode(t);
    agentId = parent = node.agentId(server.trustDomain);
    conf = await agentConfFor(server, { x509pop: node }, t);
  }
  await server.createEntries([uidEntry(id(`/${t}/a`), parent, UID_A)]);
  const agent = cleanup.add(await startAgent(kind, bins, conf));
  await waitForSvid(agent, UID_A, id(`/${t}/a`));
  return { agent, agentId, parent, t };
}

async function agentRecord(agentId: string) {
  return (await server.listAgents()).find((a) => a.id === agentId);
}

describe.skipIf(plan.skip).each(KINDS)('agent SVID lifecycle: %s', (kind) => {
  // Independent agents, mostly waiting on the server's clock: run them side by side.
  it.concurrent(`renewal at half-life of a ${AGENT_TTL_S}s agent SVID (join_token: RenewAgent; x509pop: re-attestation), no gap for workloads`, async () => {
    const agents = await Promise.all([startWith(kind, 'join_token', 'renew'), startWith(kind, 'x509pop', 'renew')]);
    await Promise.all(
      agents.map(async ({ agent, agentId, parent, t }) => {
        const first = (await agentRecord(agentId))!;
        expect(first.serial).not.toBe('');
        const watch = cleanup.add(await Watcher.open(agent, UID_A));
        const renewed = await waitFor(
          `${agentId} to get a new agent SVID serial`,
          async () => {
            const r = await agentRecord(agentId);
            return r && r.serial && r.serial !== first.serial ? r : undefined;
          },
          { timeoutMs: AGENT_TTL_S * 1000 + 30_000, intervalMs: 1000, describe: () => agent.logTail() },
        );
        expect(renewed.expiresAt).toBeGreaterThan(first.expiresAt);
        // Past the old SVID's expiry only the renewed one can open mTLS to the server: an entry
        // created now reaching the workload proves the agent switched.
        await waitFor('the first agent SVID to expire', () => (Date.now() > first.expiresAt * 1000 + 2000 ? true : undefined), {
          timeoutMs: AGENT_TTL_S * 1000 + 10_000,
          intervalMs: 500,
        });
        await server.createEntries([uidEntry(id(`/${t}/late`), parent, UID_A)]);
        await watch.until('an entry created after the old agent SVID expired', (l) => !!l.svids?.some((s) => s.id === id(`/${t}/late`)), 60_000);
        expect(watch.lines.filter((l) => l.error), JSON.stringify(watch.lines.filter((l) => l.error))).toEqual([]);
        expect((await server.listAgents()).filter((a) => a.id === agentId)).toHaveLength(1);
        expect(agent.daemon.alive(), agent.logTail()).toBe(true);
        await watch.close();
        await agent.destroy();
      }),
    );
  }, 300_000);

  it.concurrent('evicted, join_token (cannot re-attest): removes its SVID from data_dir and exits', async () => {
    const { agent, agentId } = await startWith(kind, 'join_token', 'evict');
    await server.evictAgent(agentId);
    const log = await agent.waitExit(60_000);
    expect(log).toMatch(/attest/i);
    const data = JSON.parse(await readFile(join(agent.dataDir, 'agent-data.json'), 'utf8').catch(() => '{}'));
    expect(data.svid ?? null, 'agent SVID left in agent-data.json after eviction').toBeNull();
    expect(await agentRecord(agentId)).toBeUndefined();
    await agent.destroy();
  });

  it.concurrent('evicted, x509pop (re-attestable): attests again and keeps serving', async () => {
    const { agent, agentId, t } = await startWith(kind, 'x509pop', 'evict');
    const before = (await agentRecord(agentId))!;
    await server.evictAgent(agentId);
    const back = await waitFor(
      'the evicted x509pop agent to attest again',
      async () => {
        const r = await agentRecord(agentId);
        return r && r.serial !== before.serial ? r : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000, describe: () => agent.logTail() },
    );
    expect(back.canReattest).toBe(true);
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
    await agent.destroy();
  });

  it.concurrent('banned: removes its SVID and exits; started again it is refused', async () => {
    const { agent, agentId } = await startWith(kind, 'x509pop', 'ban');
    await server.banAgent(agentId);
    const log = await agent.waitExit(60_000);
    expect(log).toMatch(/banned/i);
    expect((await agentRecord(agentId))?.banned).toBe(true);
    const data = JSON.parse(await readFile(join(agent.dataDir, 'agent-data.json'), 'utf8').catch(() => '{}'));
    expect(data.svid ?? null).toBeNull();
    await agent.start({ waitReady: false });
    const again = await agent.waitExit(60_000);
    expect(agent.daemon.proc.exitCode).not.toBe(0);
    expect(again.split('\n').slice(-30).join('\n')).toMatch(/banned|PermissionDenied|failed to attest/i);
    await agent.destroy();
  });
});
