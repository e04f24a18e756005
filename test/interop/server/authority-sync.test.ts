/**
 * The server authority's entry sync against the real spire-server v1.13.3, both ways spiffe-agent
 * can fetch entries: SyncAuthorizedEntries (default) and GetAuthorizedEntries
 * (use_sync_authorized_entries = false), with more than 500 entries whose total size is over
 * 4 MiB (gRPC's default message limit), so paging and large messages are both exercised.
 * Both agents hold the same node alias, so one set of entries serves both.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UID_A, agentConfFor, startAgent, startSpireServer, waitForX509, type EntryInput, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { Cleanup, id, plan, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
const TOTAL = 900;
/** ~5 KiB of selectors per entry: 900 entries ≈ 4.6 MiB. */
const BIG = 'x'.repeat(620);

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s', logLevel: 'INFO' }));
});
afterAll(() => cleanup.run());

describe.skipIf(plan.skip)('entry sync with the real server: more than a page and more than 4 MiB', () => {
  it('serves the matching entries with SyncAuthorizedEntries and with GetAuthorizedEntries', async () => {
    const alias = id('/node/authority-sync');
    const entries: EntryInput[] = [];
    const mine: string[] = [];
    for (let i = 0; i < TOTAL; i++) {
      if (i % 150 === 75) {
        mine.push(id(`/sync/a-${i}`));
        entries.push(uidEntry(id(`/sync/a-${i}`), alias, UID_A));
      } else {
        const selectors = Array.from({ length: 8 }, (_, k) => ({ type: 'unix', value: `uid:${30_000 + i}-${k}-${BIG}` }));
        entries.push({ spiffe_id: id(`/sync/w-${i}`), parent_id: alias, selectors });
      }
    }
    const size = Buffer.byteLength(JSON.stringify(entries));
    expect(size).toBeGreaterThan(4 * 1024 * 1024);
    const created = await server.createEntries(entries);
    expect(created).toHaveLength(TOTAL);

    const sync = cleanup.add(await startAgent('spiffe-agent', bins, await agentConfFor(server, { joinToken: await server.generateToken(alias) }, 'ours-sync'), { readyTimeoutMs: 180_000 }));
    const get = cleanup.add(
      await startAgent(
        'spiffe-agent',
        bins,
        await agentConfFor(server, { joinToken: await server.generateToken(alias), agentExtra: '    experimental { use_sync_authorized_entries = false }' }, 'ours-get'),
        { readyTimeoutMs: 180_000 },
      ),
    );
    for (const agent of [sync, get]) {
      const r = await waitForX509(agent, UID_A, `all ${mine.length} matching SVIDs`, (x) => x.ok && x.svids.length === mine.length, { timeoutMs: 180_000 });
      expect(r.svids.map((s) => s.id).sort()).toEqual([...mine].sort());
      expect(r.svids.every((s) => s.verified)).toBe(true);
    }
    // Each agent holds all of them, not just the ones that match (its debug log counts them, plus
    // the node-alias entry `token generate -spiffeID` makes).
    for (const agent of [sync, get]) {
      const log = await readFile(join(agent.conf.dir, 'spiffe-agent.log'), 'utf8');
      expect(log, agent.logTail()).toMatch(new RegExp(`Entries synced.*count=${TOTAL + 1}\\b`));
    }

    // An edit and a deletion among the 900 reach both agents within a few sync intervals.
    const victim = created.find((e) => e.spiffe_id === mine[2])!;
    await server.deleteEntry(victim.id);
    for (const agent of [sync, get]) {
      const after = await waitForX509(agent, UID_A, 'the deleted entry withdrawn', (x) => x.ok && x.svids.length === mine.length - 1, { timeoutMs: 60_000 });
      expect(after.svids.map((s) => s.id)).not.toContain(mine[2]);
      expect(agent.daemon.alive(), agent.logTail()).toBe(true);
    }
  }, 600_000);
});
