/**
 * Restarts resume from data_dir without attesting again: graceful (SIGTERM) and kill -9, for each
 * agent; and a data_dir handed from spire-agent v1.13.3 to spiffe-agent and back. "No new
 * attestation" is read off the server: the agent list keeps one entry for the agent's ID with the
 * same SVID serial, and the join token in agent.conf is already used, so attesting again would fail.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentHandle,
  UID_A,
  UID_B,
  agentConfFor,
  startAgent,
  startSpireServer,
  waitForSvid,
  type AgentKind,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s' }));
});
afterAll(() => cleanup.run());

async function serverView(agentId: string): Promise<{ count: number; serial: string }> {
  const all = (await server.listAgents()).filter((a) => a.id === agentId);
  return { count: all.length, serial: all[0]?.serial ?? '' };
}

async function attested(kind: AgentKind, t: string): Promise<{ agent: AgentHandle; agentId: string; serial: string }> {
  const alias = id(`/node/${t}`);
  const token = await server.generateToken(alias);
  await server.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A), uidEntry(id(`/${t}/b`), alias, UID_B)]);
  const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: token }, t)));
  await waitForSvid(agent, UID_A, id(`/${t}/a`));
  const agentId = server.agentIdForToken(token);
  const v = await serverView(agentId);
  expect(v.count).toBe(1);
  expect(v.serial).not.toBe('');
  return { agent, agentId, serial: v.serial };
}

describe.skipIf(plan.skip).each(KINDS)('restart without re-attestation: %s', (kind) => {
  it.each([
    ['graceful (SIGTERM)', 'SIGTERM'],
    ['kill -9', 'SIGKILL'],
  ] as const)('%s restart resumes with the stored agent SVID and serves the same identities', async (_label, signal) => {
    const t = tag(kind, signal === 'SIGKILL' ? 'kill9' : 'term');
    const { agent, agentId, serial } = await attested(kind, t);
    const files = await stat(join(agent.dataDir, 'agent-data.json')).catch(() => undefined);
    expect(files?.isFile(), 'agent-data.json in data_dir').toBe(true);
    await agent.stop(signal);
    await agent.start();
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    await waitForSvid(agent, UID_B, id(`/${t}/b`));
    expect(await serverView(agentId)).toEqual({ count: 1, serial });
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
    await agent.destroy();
  });
});

// spire-agent → spiffe-agent → spire-agent on one data_dir and one agent.conf. With only one kind
// selected (SERVER_SUITE_AGENTS) it hands the dir from that kind to itself, which checks the test.
const chain: AgentKind[] = KINDS.length > 1 ? ['spire-agent', 'spiffe-agent', 'spire-agent'] : [KINDS[0]!, KINDS[0]!];

describe.skipIf(plan.skip)('data_dir hand-over', () => {
  it(`${chain.join(' → ')} on the same data_dir and agent.conf: no new attestation, same workloads served`, async () => {
    const t = tag(chain[0]!, 'handover');
    const first = await attested(chain[0]!, t);
    const dataJson = await readFile(join(first.agent.dataDir, 'agent-data.json'), 'utf8');
    expect(JSON.parse(dataJson)).toHaveProperty('svid');
    await first.agent.stop();
    for (const kind of chain.slice(1)) {
      const next = cleanup.add(new AgentHandle(kind, first.agent.conf, bins));
      await next.start();
      await waitForSvid(next, UID_A, id(`/${t}/a`));
      await waitForSvid(next, UID_B, id(`/${t}/b`));
      expect(await serverView(first.agentId), next.logTail()).toEqual({ count: 1, serial: first.serial });
      await next.stop();
    }
  });
});
