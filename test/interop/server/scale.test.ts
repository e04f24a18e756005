/**
 * 1,000 entries for one agent: more than one SyncAuthorizedEntries page (the server pages at 500),
 * so the agent must diff revisions and ask for the rest by id. Ten of them match uid 1001, spread
 * through the set; the workload must receive all ten. Then one of the ten is deleted among the
 * thousand and must be withdrawn.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  agentConfFor,
  startAgent,
  startSpireServer,
  waitForX509,
  type EntryInput,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
const TOTAL = 1000;

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s', logLevel: 'INFO' }));
});
afterAll(() => cleanup.run());

describe.skipIf(plan.skip).each(KINDS)('1,000 entries: %s', (kind) => {
  it(`syncs ${TOTAL} entries (paged) and serves the 10 that match a workload`, async () => {
    const t = tag(kind, 'scale');
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    const entries: EntryInput[] = [];
    const mine: string[] = [];
    for (let i = 0; i < TOTAL; i++) {
      if (i % 100 === 50) {
        mine.push(id(`/${t}/a-${i}`));
        entries.push(uidEntry(id(`/${t}/a-${i}`), alias, UID_A));
      } else {
        // Distinct selectors nobody matches: the agent must still hold them all.
        entries.push(uidEntry(id(`/${t}/w-${i}`), alias, 20_000 + i, { hint: `w${i}` }));
      }
    }
    const created = await server.createEntries(entries);
    expect(created).toHaveLength(TOTAL);
    const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: token }, t), { readyTimeoutMs: 180_000 }));
    const r = await waitForX509(agent, UID_A, 'all 10 matching SVIDs', (x) => x.ok && x.svids.length === mine.length, { timeoutMs: 180_000 });
    expect(r.svids.map((s) => s.id).sort()).toEqual([...mine].sort());
    expect(r.svids.every((s) => s.verified)).toBe(true);

    const victim = created.find((e) => e.spiffe_id === mine[3])!;
    await server.deleteEntry(victim.id);
    const after = await waitForX509(agent, UID_A, 'the deleted entry withdrawn', (x) => x.ok && x.svids.length === mine.length - 1, { timeoutMs: 90_000 });
    expect(after.svids.map((s) => s.id)).not.toContain(mine[3]);
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
    await agent.destroy();
  }, 420_000);
});
