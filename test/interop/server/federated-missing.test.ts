/**
 * An entry federates with a trust domain the real spire-server v1.13.3 has no bundle for: the
 * agent skips that bundle with spire-agent's warning "Federated bundle not found"
 * (pkg/agent/client/client.go, fetchBundles: GetFederatedBundle NotFound is skipped, any other
 * error fails the sync) and keeps serving the entry and the other bundles.
 *
 * How the real server gets there: it refuses an entry that federates with a trust domain it has
 * no bundle for (pkg/server/datastore/sqlstore/sqlstore.go, makeFederatesWith), and refuses to
 * delete a bundle entries federate with, except `bundle delete -mode dissociate`, which unlinks
 * the entries in the datastore without writing entry events. With `events_based_cache` the
 * server's entry cache keeps serving the old federates_with until its next full reload (24 h),
 * while GetFederatedBundle reads the datastore and answers NotFound. (With the default full cache
 * the same window lasts until the next cache rebuild.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  JSON_LOGS,
  UID_A,
  agentConfFor,
  fetchX509,
  jsonLogs,
  sleep,
  startAgent,
  startSpireServer,
  waitForX509,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { TestCA } from '../../helpers/test-ca.js';
import { Cleanup, KINDS, TD, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
const OTHER = 'spiffe://other.org';

async function pemOf(td: string): Promise<string> {
  const b64 = Buffer.from((await TestCA.create(td)).der()).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(
    await startSpireServer({ bins, serverExtra: '    experimental {\n        events_based_cache = true\n        cache_reload_interval = "1s"\n    }\n' }),
  );
  await server.setFederatedBundle(OTHER, await pemOf('other.org'));
});
afterAll(() => cleanup.run());

const bundleTDs = (r: { bundles?: Record<string, string[]> }): string[] => Object.keys(r.bundles ?? {}).sort();

describe.skipIf(plan.skip).each(KINDS)('federated bundle missing on the server: %s', (kind) => {
  it('skips the missing bundle with a warning and keeps serving the entry and the other bundles', async () => {
    const t = tag(kind, 'fed');
    const missing = `spiffe://${t}.missing.org`;
    await server.setFederatedBundle(missing, await pemOf(`${t}.missing.org`));
    const alias = id(`/node/${t}`);
    const [entry] = await server.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A, { federates_with: [OTHER, missing] })]);
    const conf = await agentConfFor(server, { joinToken: await server.generateToken(alias), agentExtra: JSON_LOGS }, t);
    const agent = cleanup.add(await startAgent(kind, bins, conf));
    const all = [`spiffe://${TD}`, OTHER, missing].sort();
    await waitForX509(agent, UID_A, 'the SVID and all three bundles', (r) => r.ok && r.svids.length === 1 && bundleTDs(r).join() === all.join());

    await server.cliOk(['bundle', 'delete', '-id', missing, '-mode', 'dissociate']);
    // The datastore no longer links them; the server's entry cache still does.
    const shown = await server.showEntries(['-entryID', entry!.id]);
    expect(shown[0]?.federates_with ?? []).toEqual(['other.org']);
    const rest = [`spiffe://${TD}`, OTHER].sort();
    const r = await waitForX509(agent, UID_A, 'the missing bundle withdrawn', (x) => x.ok && bundleTDs(x).join() === rest.join(), { timeoutMs: 60_000 });
    expect(r.svids.map((s) => s.id)).toEqual([id(`/${t}/a`)]);
    expect(r.svids[0]!.verified).toBe(true);

    // A few more syncs: still served, and each sync warns again (as spire-agent does).
    await sleep(11_000);
    const later = await fetchX509(agent, UID_A);
    expect(later.ok && bundleTDs(later).join() === rest.join() && later.svids.length === 1, JSON.stringify(later)).toBe(true);
    const warnings = jsonLogs(agent).filter((l) => l.msg === 'Federated bundle not found');
    expect(warnings.length, agent.logTail()).toBeGreaterThanOrEqual(2);
    expect(warnings.every((w) => w.level === 'warning' && JSON.stringify(w).includes(`${t}.missing.org`)), JSON.stringify(warnings[0])).toBe(true);
    // No sync failed over it: a failed sync would leave the old bundle set in place.
    const { msg, level, time, ...fields } = warnings[0]!;
    console.log(`${kind}: ${warnings.length} "${msg}" ${level} lines; fields ${JSON.stringify(fields)}`);
    void time;
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
    await agent.destroy();
  }, 240_000);
});
