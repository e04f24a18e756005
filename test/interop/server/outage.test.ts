/**
 * The server goes away for longer than a sync interval (5 s) and comes back. Meanwhile workloads
 * keep their SVIDs and bundles, a workload that never asked before still gets the SVID of an entry
 * the agent has cached, and no agent dies. After the restart, entry changes and rotation resume.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  UID_B,
  Watcher,
  agentConfFor,
  agentDir,
  debugInfo,
  fetchX509,
  startAgent,
  startSpireServer,
  waitFor,
  waitForSvid,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
const SYNC_INTERVAL_MS = 5_000;
const SVID_TTL_S = 40;

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s' }));
});
afterAll(() => cleanup.run());

describe.skipIf(plan.skip).each(KINDS)('server outage: %s', (kind) => {
  it('workloads keep SVIDs while the server is down, cached entries still serve new workloads, changes resume after', async () => {
    const t = tag(kind, 'outage');
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    // A 40 s SVID reaches half-life during the outage; after it, rotation must catch up before expiry.
    await server.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A, { x509_svid_ttl: SVID_TTL_S }), uidEntry(id(`/${t}/b`), alias, UID_B)]);
    const dir = await agentDir(t);
    const adminSocket = join(dir, 'admin', 'admin.sock');
    const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { dir, joinToken: token, agentExtra: `    admin_socket_path = "${adminSocket}"` })));
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    // uid B's entry is synced and its SVID signed ahead, but B itself asks only during the outage.
    // spire-agent signs every entry's SVID in its first sync, before it serves; ours signs them just
    // after it opens its socket (a start-up wave must not hold the listener back), so B's may still be
    // on its way when A's arrives. The outage starts once the agent says it holds both.
    await waitFor('both SVIDs cached before the outage', async () => ((await debugInfo(adminSocket)).cached_x509_svids_count ?? 0) >= 2 || undefined, { timeoutMs: 30_000 });
    const watch = cleanup.add(await Watcher.open(agent, UID_A));
    const first = await watch.until('first update', (l) => !!l.update && !!l.svids?.some((s) => s.id === id(`/${t}/a`)));
    const firstSvid = first.svids!.find((s) => s.id === id(`/${t}/a`))!;
    const firstSerial = firstSvid.serial;
    const halfLife = (Date.parse(firstSvid.notBefore) + Date.parse(firstSvid.notAfter)) / 2;

    await server.stop();
    const downAt = Date.now();
    // Several sync intervals without a server, and past the SVID's half-life: each fetch must still
    // succeed with a valid SVID.
    let fetches = 0;
    while (Date.now() - downAt < 2 * SYNC_INTERVAL_MS + 2_000 || Date.now() < halfLife + 2_000) {
      const r = await fetchX509(agent, UID_A, { timeoutS: 5 });
      expect(r.ok, `fetch during outage: ${JSON.stringify(r)}\n${agent.logTail()}`).toBe(true);
      expect(r.svids.map((s) => s.id)).toContain(id(`/${t}/a`));
      expect(Date.parse(r.svids[0]!.notAfter)).toBeGreaterThan(Date.now());
      fetches++;
    }
    expect(fetches).toBeGreaterThan(1);
    const b = await fetchX509(agent, UID_B, { timeoutS: 10 });
    expect(b.ok, `new workload during outage: ${JSON.stringify(b)}\n${agent.logTail()}`).toBe(true);
    expect(b.svids.map((s) => s.id)).toEqual([id(`/${t}/b`)]);
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
    // The stream stayed open: no stream error reached the workload.
    expect(watch.lines.filter((l) => l.error), JSON.stringify(watch.lines.filter((l) => l.error))).toEqual([]);

    await server.restart();
    // Rotation catches up: the SVID past its half-life is replaced before it expires.
    const rotated = await watch.until(
      'the SVID of /a to rotate after the outage',
      (l) => !!l.svids?.some((s) => s.id === id(`/${t}/a`) && s.serial !== firstSerial),
      SVID_TTL_S * 1000 + 30_000,
    );
    const cur = rotated.svids!.find((s) => s.id === id(`/${t}/a`))!;
    expect(cur.verified, cur.verifyError).toBe(true);
    expect(Date.now(), 'rotated SVID arrived after the old one expired').toBeLessThan(Date.parse(firstSvid.notAfter) + 1000);
    // Sync resumes: a new entry reaches the open stream.
    await server.createEntries([uidEntry(id(`/${t}/a2`), alias, UID_A)]);
    await watch.until('entry created after the outage to reach the stream', (l) => !!l.svids?.some((s) => s.id === id(`/${t}/a2`)), 120_000);
    await waitFor('agent still alive', () => (agent.daemon.alive() ? true : undefined), { timeoutMs: 1000 });
    await watch.close();
    await agent.destroy();
  }, 360_000);
});
