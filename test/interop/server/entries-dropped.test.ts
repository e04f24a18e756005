/**
 * Entries a real spire-server v1.13.3 serves but a workload must never get, on both agents:
 * - malformed entries (no selectors, ':' in a selector type, an empty selector type or value):
 *   dropped with spire-agent's warning and reason (pkg/agent/client/client.go, util.go
 *   slicedEntryFromProto). The server's API refuses to create them, so they are written into its
 *   datastore (test/helpers/spire/datastore.ts), which it reads back without those checks. (An
 *   entry without an ID cannot be served: the datastore skips such rows.)
 * - a store_svid entry (`entry create` with store_svid, a real CLI option): for SVIDStore
 *   plugins, never for the Workload API (pkg/agent/manager/sync.go, fetchEntries).
 * - an entry the server lists but will not sign: a SPIFFE ID outside its trust domain (datastore
 *   again). BatchNewX509SVID refuses that one entry, Internal "entry has malformed SPIFFE ID",
 *   and signs the rest of the batch (pkg/server/api/svid/v1/service.go, newX509SVID).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  UID_B,
  agentConfFor,
  JSON_LOGS,
  damageEntry,
  fetchX509,
  jsonLogs,
  sleep,
  startAgent,
  startSpireServer,
  waitForX509,
  type DatastoreDamage,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
const MALFORMED = 'Received malformed entry from SPIRE server; are the server and agent versions compatible?';

beforeAll(async () => {
  bins = plan.require();
  // events_based_cache serves what is in the datastore when it starts, also an entry outside the
  // trust domain (the default full cache skips those).
  server = cleanup.add(await startSpireServer({ bins, serverExtra: '    experimental {\n        events_based_cache = true\n        cache_reload_interval = "1s"\n    }\n' }));
});
afterAll(() => cleanup.run());

const ids = (r: { svids?: { id: string }[] }): string[] => (r.svids ?? []).map((s) => s.id).sort();

describe.skipIf(plan.skip).each(KINDS)('entries served but dropped: %s', (kind) => {
  it('drops malformed entries with the reason, never serves store_svid entries, signs the rest of a batch with one entry refused', async () => {
    const t = tag(kind, 'drop');
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    const damages: Record<string, { damage: DatastoreDamage; reason: string }> = {
      'no-selectors': { damage: { kind: 'no-selectors' }, reason: 'selector list is empty' },
      colon: { damage: { kind: 'selector-type', type: 'unix:uid' }, reason: "selector type contains ':'" },
      'empty-type': { damage: { kind: 'selector-type', type: '' }, reason: 'missing selector type' },
      'empty-value': { damage: { kind: 'selector-value', value: '' }, reason: 'missing selector value' },
      foreign: { damage: { kind: 'spiffe-id', spiffeId: `spiffe://other.org/${t}/foreign` }, reason: '' },
    };
    const created = await server.createEntries([
      uidEntry(id(`/${t}/ok`), alias, UID_A),
      ...Object.keys(damages).filter((k) => k !== 'foreign').map((k) => uidEntry(id(`/${t}/${k}`), alias, UID_A)),
      uidEntry(id(`/${t}/store`), alias, UID_A, { store_svid: true }),
      uidEntry(id(`/${t}/b-ok`), alias, UID_B),
      uidEntry(id(`/${t}/foreign`), alias, UID_B),
    ]);
    const entryId = (name: string): string => created.find((e) => e.spiffe_id === id(`/${t}/${name}`))!.id;
    for (const [name, d] of Object.entries(damages)) await damageEntry(server, entryId(name), d.damage);
    // The server's events-based entry cache loads the rows as they are now when it starts.
    await server.restart();

    const conf = await agentConfFor(server, { joinToken: token, agentExtra: JSON_LOGS }, t);
    const agent = cleanup.add(await startAgent(kind, bins, conf));

    // uid A: only the good entry, signed in the same start-up batch as the refused one.
    const a = await waitForX509(agent, UID_A, `uid A served ${t}/ok`, (r) => r.ok && ids(r).includes(id(`/${t}/ok`)));
    // A few more syncs (5 s each) change nothing.
    await sleep(11_000);
    const a2 = await fetchX509(agent, UID_A);
    for (const r of [a, a2]) expect(ids(r), JSON.stringify(r)).toEqual([id(`/${t}/ok`)]);
    expect(a2.svids[0]!.verified).toBe(true);
    // uid B matches the refused entry and a good one: neither agent serves uid B an incomplete set
    // (spire-agent's cache waits until every entry of a workload has an SVID).
    const b = await fetchX509(agent, UID_B, { timeoutS: 5 });
    expect(b.ok, JSON.stringify(b)).toBe(false);
    expect(b.svids ?? []).toEqual([]);

    const logs = jsonLogs(agent);
    // One warning per malformed entry and sync, with spire-agent's message and reason.
    for (const [name, d] of Object.entries(damages)) {
      if (name === 'foreign') continue;
      const warned = logs.filter((l) => l.msg === MALFORMED && l.entry_id === entryId(name));
      expect(warned.length, `${kind}: warning for ${name}\n${agent.logTail()}`).toBeGreaterThan(0);
      expect(warned.every((l) => l.level === 'warning' && l.error === d.reason), JSON.stringify(warned[0])).toBe(true);
    }
    expect(logs.filter((l) => l.msg === MALFORMED && l.entry_id === entryId('ok'))).toEqual([]);
    expect(logs.filter((l) => l.msg === MALFORMED && l.entry_id === entryId('store'))).toEqual([]);

    // The refusal is logged with the server's reason, and names the entry.
    const refused = logs.filter((l) => JSON.stringify(l).includes(entryId('foreign')) && JSON.stringify(l).includes('entry has malformed SPIFFE ID'));
    expect(refused.length, `${kind}: the refused entry is logged\n${agent.logTail()}`).toBeGreaterThan(0);
    const storeLines = logs.filter((l) => JSON.stringify(l).includes(entryId('store')));
    const kinds = (ls: Record<string, unknown>[]): string => {
      const n = new Map<string, number>();
      for (const l of ls) n.set(`${l.level} ${l.msg}`, (n.get(`${l.level} ${l.msg}`) ?? 0) + 1);
      return JSON.stringify([...n].map(([k, v]) => `${k} x${v}`));
    };
    console.log(`${kind}: uid B got ${b.code}: ${b.error?.slice(0, 160)}\n  refused entry lines: ${kinds(refused)}\n  store_svid entry lines: ${kinds(storeLines)}`);
    expect(agent.daemon.alive(), agent.logTail()).toBe(true);
    await agent.destroy();
  }, 240_000);
});
