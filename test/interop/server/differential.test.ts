/**
 * Differential test: one spire-server v1.13.3, the same entries, spire-agent v1.13.3 and
 * spiffe-agent side by side (two data dirs, two sockets, two join tokens). The same go-spiffe
 * client (go-client canon) asks both, as the same uids, and the two canonical descriptions are
 * compared path by path. Any difference must be listed, with its reason, in README.md's table
 * "Differences from spire-agent"; the allow-list is read from that table, so the two cannot drift.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO,
  UID_A,
  UID_B,
  UID_NONE,
  agentConfFor,
  goClientRun,
  startAgent,
  startSpireServer,
  waitForSvid,
  type AgentHandle,
  type AgentKind,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { TestCA } from '../../helpers/test-ca.js';
import { Cleanup, KINDS, id, plan, uidEntry } from './fixture.js';

/** Reference first. With one kind selected it compares that kind with itself (a check of the test). */
const PAIR: [AgentKind, AgentKind] = KINDS.length > 1 ? ['spire-agent', 'spiffe-agent'] : [KINDS[0]!, KINDS[0]!];
const AUDIENCES = ['spiffe://example.org/aud-1', 'spiffe://example.org/aud-2'];
const FEDERATED = 'spiffe://other.org';

export interface AllowedDifference {
  what: string;
  pattern: string;
  reason: string;
  re: RegExp;
}

/** Rows of README.md's "Differences from spire-agent" table whose second column names a path. */
export function readAllowList(readme = readFileSync(join(REPO, 'README.md'), 'utf8')): AllowedDifference[] {
  const start = readme.indexOf('## Differences from spire-agent');
  if (start < 0) throw new Error('README.md has no "## Differences from spire-agent" section');
  const section = readme.slice(start).split(/\n## /)[0]!;
  const rows: AllowedDifference[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || !line.trim().startsWith('|') || /^-+$/.test(cells[1]!.replace(/:/g, '')) || cells[1] === 'What differs') continue;
    const [, what, where, reason] = cells as [string, string, string, string];
    const m = where.match(/^`([^`]+)`$/);
    if (!m) continue; // documented difference the differential test does not observe
    if (!reason) throw new Error(`README difference "${what}" has no reason`);
    const pattern = m[1]!;
    const re = new RegExp(`^${pattern.replace(/[.+?^${}()|\\]/g, '\\$&').replace(/\[/g, '\\[').replace(/\]/g, '\\]').replace(/\*/g, '[^]*?')}$`);
    rows.push({ what, pattern, reason, re });
  }
  return rows;
}

/** JSON → "a.b[0].c" → scalar as JSON text. Missing on one side shows as "<absent>". */
export function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v)) {
    if (v.length === 0) out.set(prefix, '[]');
    v.forEach((x, i) => flatten(x, `${prefix}[${i}]`, out));
  } else if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    if (keys.length === 0) out.set(prefix, '{}');
    for (const k of keys) flatten((v as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(v));
  }
  return out;
}

export function diff(a: unknown, b: unknown): { path: string; ref: string; ours: string }[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const out: { path: string; ref: string; ours: string }[] = [];
  for (const path of new Set([...fa.keys(), ...fb.keys()])) {
    const x = fa.get(path) ?? '<absent>';
    const y = fb.get(path) ?? '<absent>';
    if (x !== y) out.push({ path, ref: x, ours: y });
  }
  return out.sort((p, q) => p.path.localeCompare(q.path));
}

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
const agents: AgentHandle[] = [];

function entriesFor(parent: string) {
  return [
    uidEntry(id('/diff/a-main'), parent, UID_A, { hint: 'main', federates_with: [FEDERATED], dns_names: ['a.example.org', 'a.internal'] }),
    uidEntry(id('/diff/a-short'), parent, UID_A, { x509_svid_ttl: 600, jwt_svid_ttl: 120 }),
    uidEntry(id('/diff/b'), parent, UID_B, { hint: 'b' }),
  ];
}

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s' }));
  const other = await TestCA.create('other.org');
  const b64 = Buffer.from(other.der()).toString('base64').replace(/(.{64})/g, '$1\n');
  await server.setFederatedBundle(FEDERATED, `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`);
  for (const [i, kind] of PAIR.entries()) {
    const alias = id(`/node/diff-${i}-${kind}`);
    const token = await server.generateToken(alias);
    await server.createEntries(entriesFor(alias));
    agents.push(cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: token }, `diff-${i}`))));
  }
  for (const agent of agents) {
    await waitForSvid(agent, UID_A, id('/diff/a-main'));
    await waitForSvid(agent, UID_A, id('/diff/a-short'));
    await waitForSvid(agent, UID_B, id('/diff/b'));
  }
});
afterAll(() => cleanup.run());

async function canon(agent: AgentHandle, uid: number): Promise<any> {
  const args = ['canon', '-timeout', '15s'];
  for (const a of AUDIENCES) args.push('-audience', a);
  const r = await goClientRun(agent, uid, args);
  // On failure only the step and gRPC code are comparable; the message text is each agent's own.
  if (!r.ok) return { ok: false, step: r.step, code: r.code };
  // spire-agent's own SVID order is not stable (two spire-agents on the same entries answered
  // [a-main, a-short] and [a-short, a-main] in this test), so order is not compared.
  delete r.x509SvidOrder;
  return r;
}

describe.skipIf(plan.skip)(`differential: ${PAIR[0]} vs ${PAIR[1]} on one spire-server`, () => {
  it('README table "Differences from spire-agent" parses and every observed row has a reason', () => {
    const rows = readAllowList();
    for (const r of rows) expect(r.reason.length, r.what).toBeGreaterThan(10);
  });

  it.each([
    ['uid 1001 (two SVIDs, federated bundle, DNS SANs, hints, JWT for two audiences)', UID_A],
    ['uid 1002 (one SVID)', UID_B],
    ['uid 1003 (no entry: refused)', UID_NONE],
  ])('%s: both agents serve the same thing, or the difference is in the README', async (_label, uid) => {
    const [ref, ours] = await Promise.all(agents.map((a) => canon(a, uid)));
    if (process.env.DIFF_DUMP) writeFileSync(`${process.env.DIFF_DUMP}-${uid}.json`, JSON.stringify({ [PAIR[0]]: ref, [PAIR[1]]: ours }, null, 2));
    if (uid !== UID_NONE) {
      expect(ref.ok, `reference ${PAIR[0]} failed: ${JSON.stringify(ref)}`).toBe(true);
      expect(ref.x509Svids.length).toBeGreaterThan(0);
      expect(ref.jwtSvids.every((j: { validated: boolean }) => j.validated), JSON.stringify(ref.jwtSvids)).toBe(true);
    } else {
      expect(ref).toEqual({ ok: false, step: 'FetchX509Context', code: 'PermissionDenied' });
    }
    if (uid === UID_A) {
      // The comparison covers what it claims to: federated bundle, DNS SANs, hints, both SVIDs, 3 audience sets.
      expect(Object.keys(ref.x509Bundles).sort()).toEqual(['spiffe://example.org', FEDERATED]);
      expect(ref.x509Svids.map((s: { id: string }) => s.id)).toEqual([id('/diff/a-main'), id('/diff/a-short')]);
      expect(ref.x509Svids[0].chain[0].dnsSans).toEqual(['a.example.org', 'a.internal']);
      expect(ref.x509Svids[0].hint).toBe('main');
      expect(new Set(ref.jwtSvids.map((j: { requestedAudience: string }) => j.requestedAudience)).size).toBe(3);
    }
    const allow = readAllowList();
    const unexplained = diff(ref, ours).filter((d) => !allow.some((r) => r.re.test(d.path)));
    const explained = diff(ref, ours).filter((d) => allow.some((r) => r.re.test(d.path)));
    if (explained.length) console.log(`allowed differences (README): ${explained.map((d) => d.path).join(', ')}`);
    expect(
      unexplained.map((d) => `${d.path}: ${PAIR[0]}=${d.ref} ${PAIR[1]}=${d.ours}`),
      `differences not listed in README.md "Differences from spire-agent":\n${agents[1]!.logTail(20)}`,
    ).toEqual([]);
  });
});
