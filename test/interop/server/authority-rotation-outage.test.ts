/**
 * Workload SVID rotation across an outage of the real spire-server v1.13.3: an SVID that falls
 * due (half of a 30 s TTL) while the server is down keeps being served while it is valid, and is
 * replaced once the server is back (within 30 s here; about one 5 s sync interval, logged).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UID_A, agentConfFor, fetchX509, startAgent, startSpireServer, waitForSvid, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { Cleanup, id, plan, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s' }));
});
afterAll(() => cleanup.run());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(plan.skip)('workload SVID rotation across a server outage', () => {
  it('keeps the due SVID while the server is down and rotates it soon after the server returns', async () => {
    const alias = id('/node/authority-rotation');
    const spiffeId = id('/rotation/a');
    await server.createEntries([uidEntry(spiffeId, alias, UID_A, { x509_svid_ttl: 30 })]);
    const agent = cleanup.add(await startAgent('spiffe-agent', bins, await agentConfFor(server, { joinToken: await server.generateToken(alias) }, 'ours-rot-outage')));
    const first = (await waitForSvid(agent, UID_A, spiffeId)).svids[0]!;
    const notBefore = Date.parse(first.notBefore);
    const notAfter = Date.parse(first.notAfter);

    await server.stop();
    // Past half-life, still valid.
    await sleep(Math.max(0, notBefore + (notAfter - notBefore) * 0.6 - Date.now()));
    const during = await fetchX509(agent, UID_A, { timeoutS: 10 });
    expect(during.ok, `${JSON.stringify(during)}\n${agent.logTail()}`).toBe(true);
    expect(during.svids[0]!.serial).toBe(first.serial);
    expect(during.svids[0]!.verified).toBe(true);

    await server.restart();
    const back = Date.now();
    let now = await fetchX509(agent, UID_A, { timeoutS: 10 });
    while (now.svids[0]?.serial === first.serial && Date.now() - back < 30_000) {
      await sleep(500);
      now = await fetchX509(agent, UID_A, { timeoutS: 10 });
    }
    const took = Date.now() - back;
    console.log(`spiffe-agent: rotation after the server came back: ${took} ms`);
    expect(now.ok && now.svids[0]!.serial !== first.serial, agent.logTail()).toBe(true);
    expect(now.svids[0]!.verified).toBe(true);
    // `took` (about one 5 s sync) is logged, not asserted: a loaded machine would fail a bound on it.
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
  }, 240_000);
});
