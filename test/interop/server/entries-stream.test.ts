/**
 * Entries created and deleted on the server with the real CLI while go-spiffe workloads hold
 * WatchX509Context streams open: a new entry reaches the matching stream, a deleted one is
 * withdrawn from it, the last one deleted ends that workload's identity, other workloads untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  UID_B,
  Watcher,
  agentConfFor,
  startAgent,
  startSpireServer,
  waitForSvid,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins }));
});
afterAll(() => cleanup.run());

const ids = (l: { svids?: { id: string }[] }): string[] => (l.svids ?? []).map((s) => s.id).sort();

describe.skipIf(plan.skip).each(KINDS)('entries changed while workloads stream: %s', (kind) => {
  it('created → appears on the open stream; deleted → withdrawn; last deleted → no identity; the other uid untouched', async () => {
    const t = tag(kind, 'stream');
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    const [a1, b1] = await server.createEntries([uidEntry(id(`/${t}/a1`), alias, UID_A), uidEntry(id(`/${t}/b1`), alias, UID_B)]);
    const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: token }, t)));
    await waitForSvid(agent, UID_A, id(`/${t}/a1`));
    await waitForSvid(agent, UID_B, id(`/${t}/b1`));
    const wa = cleanup.add(await Watcher.open(agent, UID_A));
    const wb = cleanup.add(await Watcher.open(agent, UID_B));
    await wa.until('a1 on the stream', (l) => ids(l).includes(id(`/${t}/a1`)));
    await wb.until('b1 on the stream', (l) => ids(l).includes(id(`/${t}/b1`)));

    // Propagation: server cache reload (5 s) + agent sync (5 s) + signing; allow a loaded machine 60 s.
    const created = Date.now();
    const [a2] = await server.createEntries([uidEntry(id(`/${t}/a2`), alias, UID_A, { hint: 'second' })]);
    const both = await wa.until('a2 to join a1 on the stream', (l) => ids(l).join() === [id(`/${t}/a1`), id(`/${t}/a2`)].join(), 60_000);
    expect(both.svids!.find((s) => s.id === id(`/${t}/a2`))!.hint).toBe('second');
    console.log(`${kind}: entry create → SVID on the open stream: ${Date.now() - created} ms`);

    let mark = wa.lines.length;
    await server.deleteEntry(a2!.id);
    await wa.until('a2 withdrawn, a1 kept', (l) => !!l.update && ids(l).join() === id(`/${t}/a1`), 60_000, mark);

    mark = wa.lines.length;
    await server.deleteEntry(a1!.id);
    // No identity left: go-spiffe sees either an empty update or the stream's PermissionDenied.
    const gone = await wa.until('a1 withdrawn', (l) => (!!l.update && ids(l).length === 0) || l.code === 'PermissionDenied', 60_000, mark);
    expect(gone.code ?? 'update').toMatch(/PermissionDenied|update/);

    // uid B saw no withdrawal at any point.
    for (const l of wb.updates()) expect(ids(l)).toContain(id(`/${t}/b1`));
    expect(wb.lines.filter((l) => l.error)).toEqual([]);
    await server.deleteEntry(b1!.id);
    await wa.close();
    await wb.close();
    await agent.destroy();
  });
});
