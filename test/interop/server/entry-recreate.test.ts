/**
 * With more than a page of entries (the real server pages at 500), SyncAuthorizedEntries first
 * sends each entry's revision number and created_at, and the agent asks in full only for the
 * entries that are new or changed. Two changes among 600 entries, on a real spire-server v1.13.3:
 * - `entry delete` then `entry create -entryID <same id>`: the same id and revision number (0),
 *   a new created_at. spire-agent refetches it (pkg/agent/client/client.go, entryIsStale: "they
 *   are completely different entries even if the revision number is the same").
 * - `entry update`: the revision number goes up.
 * Both agents are stopped (SIGSTOP) while the server changes, so neither sees the entry deleted
 * in between: after SIGCONT their next sync sees only the recreated entry, and only created_at
 * says it is a different one. An agent that ignored created_at would keep the old entry (hint v1).
 */
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  agentConfFor,
  sleep,
  startAgent,
  startSpireServer,
  waitForX509,
  type AgentHandle,
  type EntryInput,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
const FILLER = 600;

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s', logLevel: 'INFO' }));
});
afterAll(() => cleanup.run());

interface Shown {
  id: string;
  spiffe_id: { path: string };
  revision_number?: string | number;
  created_at?: string | number;
}

async function show(entryId: string): Promise<Shown> {
  const j = await server.cliJson<{ entries?: Shown[] }>(['entry', 'show', '-entryID', entryId]);
  if (!j.entries?.[0]) throw new Error(`entry show ${entryId}: no entry`);
  return j.entries[0];
}

async function update(e: EntryInput & { entry_id: string }): Promise<void> {
  const file = join(server.dir, `update-${randomUUID()}.json`);
  await writeFile(file, JSON.stringify({ entries: [e] }));
  const j = await server.cliJson<{ results: { status: { code?: number; message?: string } }[] }>(['entry', 'update', '-data', file]);
  await rm(file, { force: true });
  if ((j.results[0]?.status.code ?? 0) !== 0) throw new Error(`entry update: ${j.results[0]?.status.message}`);
}

const ids = (r: { svids?: { id: string }[] }): string[] => (r.svids ?? []).map((s) => s.id).sort();

describe.skipIf(plan.skip)(`an entry recreated with the same id and revision, and one updated, among ${FILLER} others: ${KINDS.join(', ')}`, () => {
  it('each agent serves the recreated entry (new created_at only) and the updated one', async () => {
    const alias = id('/node/recreate');
    const recreatedId = `recreate-${randomUUID()}`;
    const v1 = uidEntry(id('/recreate/v1'), alias, UID_A, { entry_id: recreatedId, hint: 'v1' });
    const fillers = Array.from({ length: FILLER }, (_, i) => uidEntry(id(`/recreate/w-${i}`), alias, 40_000 + i));
    const created = await server.createEntries([v1, uidEntry(id('/update/v1'), alias, UID_A), ...fillers]);
    const updated = created[1]!;

    const agents: AgentHandle[] = [];
    for (const kind of KINDS) {
      const conf = await agentConfFor(server, { joinToken: await server.generateToken(alias) }, `${kind}-recreate`);
      agents.push(cleanup.add(await startAgent(kind, bins, conf, { readyTimeoutMs: 180_000 })));
    }
    const first = [id('/recreate/v1'), id('/update/v1')];
    for (const a of agents) await waitForX509(a, UID_A, `${a.kind}: ${first.join(' and ')}`, (r) => r.ok && ids(r).join() === first.join(), { timeoutMs: 180_000 });

    const before = await show(recreatedId);
    const updatedBefore = await show(updated.id);
    for (const a of agents) a.daemon.proc.kill('SIGSTOP');
    try {
      await server.deleteEntry(recreatedId);
      // created_at has a resolution of one second.
      await sleep(1_100);
      await server.createEntries([{ ...v1, spiffe_id: id('/recreate/v2'), hint: 'v2' }]);
      await update({ ...uidEntry(id('/update/v2'), alias, UID_A), entry_id: updated.id });
      // The server's entry cache (rebuilt every second) must hold the final state before an agent syncs.
      await sleep(3_000);
    } finally {
      for (const a of agents) a.daemon.proc.kill('SIGCONT');
    }
    const resumed = Date.now();
    const after = await show(recreatedId);
    expect(after.spiffe_id.path).toBe('/recreate/v2');
    expect(Number(after.revision_number ?? 0), 'the recreated entry keeps revision 0').toBe(Number(before.revision_number ?? 0));
    expect(Number(after.created_at), 'the recreated entry has a new created_at').toBeGreaterThan(Number(before.created_at));
    expect(Number((await show(updated.id)).revision_number)).toBeGreaterThan(Number(updatedBefore.revision_number ?? 0));

    // The recreated entry's hint (v2) shows the agent fetched it again; the updated one is served under its new ID.
    for (const a of agents) {
      const r = await waitForX509(a, UID_A, `${a.kind}: the recreated entry (hint v2) and ${id('/update/v2')}`, (x) => x.ok && x.svids.length === 2 && x.svids.some((s) => s.hint === 'v2') && ids(x).includes(id('/update/v2')), {
        timeoutMs: 60_000,
      });
      const recreated = r.svids.find((s) => s.hint === 'v2')!;
      console.log(`${a.kind}: recreated and updated entries served ${Date.now() - resumed} ms after SIGCONT; the recreated entry's SVID is ${recreated.id}`);
      expect(r.svids.every((s) => s.verified)).toBe(true);
      // spire-agent keeps the SVID it signed for the old SPIFFE ID until it rotates it: its cache
      // re-signs on a new revision number, not on a new created_at (README "Differences").
      if (a.kind === 'spiffe-agent') expect(recreated.id).toBe(id('/recreate/v2'));
      expect(a.daemon.alive(), a.logTail()).toBe(true);
    }
  }, 480_000);
});
