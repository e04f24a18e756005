/**
 * Differential test: one spire-server v1.13.3, the same entries, spire-agent v1.13.3 and
 * spiffe-agent side by side (two data dirs, two sockets, two join tokens). The same go-spiffe
 * client (go-client canon) asks both, as the same uids, and the two canonical descriptions are
 * compared path by path. Any difference must be listed, with its reason, in README.md's table
 * "Differences from spire-agent"; the allow-list is read from that table, so the two cannot drift.
 *
 * So that a comparison that sees nothing cannot pass: the table parser and the comparator are first
 * checked on known inputs (differential-compare.ts), each live comparison must cover a floor of
 * fields and must catch a difference injected into the payload just received, and every path the
 * table allows must be one the comparisons saw.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
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
import { diff, explain, flatten, patternRe, readAllowList, readDifferences, TABLE_HEADER } from './differential-compare.js';
import { healthCanon } from './differential-health.js';
import { Cleanup, KINDS, id, plan, uidEntry } from './fixture.js';

/** Reference first. With one kind selected it compares that kind with itself (a check of the test). */
const PAIR: [AgentKind, AgentKind] = KINDS.length > 1 ? ['spire-agent', 'spiffe-agent'] : [KINDS[0]!, KINDS[0]!];
const AUDIENCES = ['spiffe://example.org/aud-1', 'spiffe://example.org/aud-2'];
const FEDERATED = 'spiffe://other.org';

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

async function startBoth(): Promise<void> {
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
}

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

/** What one go-spiffe `canon` run prints for a workload with one SVID, trimmed: the comparator's test input. */
const SAMPLE = {
  ok: true,
  x509Svids: [
    {
      id: 'spiffe://example.org/b',
      hint: 'b',
      chainLength: 1,
      chain: [{ keyType: 'EC P-256', isCA: false, uriSans: ['spiffe://example.org/b'], dnsSans: [], extensions: ['2.5.29.15 (critical)', '2.5.29.17'], lifetimeMinutes: 60 }],
      intermediateFingerprints: [],
      verified: true,
    },
  ],
  x509Bundles: { 'spiffe://example.org': ['5f3a'] },
  jwtSvids: [{ requestedAudience: 'aud-1', sub: 'spiffe://example.org/b', aud: ['aud-1'], claimNames: ['aud', 'exp', 'iat', 'sub'], validated: true }],
};
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('the comparator and the allow-list, on known inputs', () => {
  it('README.md\'s table "Differences from spire-agent" parses, has rows with unique keys, and every row has a reason', () => {
    const rows = readDifferences();
    expect(rows.length).toBeGreaterThan(40);
    expect(new Set(rows.map((r) => r.key)).size).toBe(rows.length);
    for (const r of rows) expect(r.reason.length, r.key).toBeGreaterThan(10);
    // The differences this test observes are rows with a path: the allow-list is not empty.
    expect(readAllowList().map((r) => r.key)).toEqual(expect.arrayContaining(['grpc-health-per-service', 'grpc-health-watch']));
  });

  it('a table the parser cannot read fails instead of allowing nothing', () => {
    const table = (...rows: string[]) => `# x\n\n## Differences from spire-agent\n\nText.\n\n| ${TABLE_HEADER.join(' | ')} |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n\n## Next\n`;
    const row = '| `hints` | Hints | none | sends them | spire-agent sends none here, for a reason | `x509Svids[*].hint` |';
    const unobserved = '| `logs` | Logs | a | b | a difference the test does not observe | — |';
    expect(readDifferences(table(row, unobserved)).map((r) => [r.key, r.pattern])).toEqual([
      ['hints', 'x509Svids[*].hint'],
      ['logs', undefined],
    ]);
    expect(readAllowList(table(row)).map((r) => r.pattern)).toEqual(['x509Svids[*].hint']);
    expect(() => readDifferences(table())).toThrow(/the table has no rows/);
    expect(() => readDifferences('# x\n\n## Other\n')).toThrow(/has no "## Differences from spire-agent" section/);
    expect(() => readDifferences(table(row).replace('Path in the differential test', 'Path'))).toThrow(/must start with the header/);
    expect(() => readDifferences(table(row).replace('|---|---|---|---|---|---|', '| | | | | | |'))).toThrow(/separator row/);
    expect(() => readDifferences(table(row.replace('`x509Svids[*].hint`', 'x509Svids.hint')))).toThrow(/the path column must be one `path` or —/);
    expect(() => readDifferences(table(row.replace('spire-agent sends none here, for a reason', '')))).toThrow(/hints needs a reason/);
    expect(() => readDifferences(table(row.replace(' | `x509Svids[*].hint` |', ' |')))).toThrow(/needs 6 cells/);
    expect(() => readDifferences(table(row.replace('`hints`', 'hints')))).toThrow(/the key column must be one `kebab-case-key`/);
    expect(() => readDifferences(table(row, row))).toThrow(/the key hints is used by two rows/);
    expect(() => readDifferences(table(row.replace('| none |', '| |')))).toThrow(/hints: the spire-agent v1.13.3 column is empty/);
  });

  it('an unlisted difference fails and a listed one is allowed by its row, named by key', () => {
    const allow = readAllowList(
      `## Differences from spire-agent\n\n| ${TABLE_HEADER.join(' | ')} |\n|---|---|---|---|---|---|\n| \`hints\` | Hints | none | sends them | a reason long enough | \`x509Svids[*].hint\` |\n`,
    );
    const changed = clone(SAMPLE);
    changed.x509Svids[0]!.hint = 'other';
    changed.x509Svids[0]!.chain[0]!.keyType = 'EC P-384';
    const { allowed, unlisted } = explain(diff(SAMPLE, changed), allow);
    expect(allowed).toEqual([{ path: 'x509Svids[0].hint', ref: '"b"', ours: '"other"', key: 'hints' }]);
    expect(unlisted.map((d) => d.path)).toEqual(['x509Svids[0].chain[0].keyType']);
    // And against the real table, which lists neither: both fail, as the live comparison would.
    expect(explain(diff(SAMPLE, changed), readAllowList()).unlisted.map((d) => d.path)).toEqual(['x509Svids[0].chain[0].keyType', 'x509Svids[0].hint']);
  });

  it('diff names a changed, a missing and an added leaf by path, and nothing for the same payload with its keys in another order', () => {
    expect(diff(SAMPLE, clone(SAMPLE))).toEqual([]);
    const reordered = Object.fromEntries(Object.entries(clone(SAMPLE)).reverse());
    expect(diff(SAMPLE, reordered)).toEqual([]);
    const changed = clone(SAMPLE);
    changed.x509Svids[0]!.chain[0]!.keyType = 'EC P-384';
    changed.x509Svids[0]!.chain[0]!.extensions.pop();
    changed.jwtSvids[0]!.aud.push('aud-2');
    changed.x509Svids[0]!.chain[0]!.lifetimeMinutes = '60' as unknown as number; // same text, other JSON type
    expect(diff(SAMPLE, changed)).toEqual([
      { path: 'jwtSvids[0].aud[1]', ref: '<absent>', ours: '"aud-2"' },
      { path: 'x509Svids[0].chain[0].extensions[1]', ref: '"2.5.29.17"', ours: '<absent>' },
      { path: 'x509Svids[0].chain[0].keyType', ref: '"EC P-256"', ours: '"EC P-384"' },
      { path: 'x509Svids[0].chain[0].lifetimeMinutes', ref: '60', ours: '"60"' },
    ]);
    expect(diff(SAMPLE, { ok: false, step: 'FetchX509Context', code: 'PermissionDenied' }).length).toBeGreaterThan(20);
    expect(flatten(SAMPLE).size).toBe(22); // every leaf, empty arrays included
  });

  it('an allow-list pattern matches the paths it names and no others', () => {
    const re = patternRe('x509Svids[*].chain[0].extensions');
    expect(re.test('x509Svids[1].chain[0].extensions')).toBe(true);
    expect(re.test('x509Svids[1].chain[1].extensions')).toBe(false);
    expect(re.test('x509Svids[1].chain[0].extensions[0]')).toBe(false);
    expect(patternRe('jwtSvids[*].aud[*]').test('jwtSvids[2].aud[0]')).toBe(true);
  });
});

/**
 * Least number of fields each workload's comparison covers. Measured with v1.13.3 on both sides:
 * uid 1001 144, uid 1002 72, uid 1003 3 (ok, step, code); the floor leaves room for a changed
 * extension list, not for a canon output that lost an SVID, a bundle or an audience set.
 */
const MIN_FIELDS = new Map([
  [UID_A, 130],
  [UID_B, 65],
  [UID_NONE, 3],
]);
/** Every path compared, over all workloads: each allow-listed path must be among them. */
const compared = new Set<string>();

/** Fails on any difference no README row lists; prints the ones allowed, with the row that allows each. */
function expectListed(ref: unknown, ours: unknown): void {
  const { allowed, unlisted } = explain(diff(ref, ours), readAllowList());
  if (allowed.length) console.log(`allowed differences (README): ${allowed.map((d) => `${d.path} (${d.key}: ${PAIR[0]}=${d.ref} ${PAIR[1]}=${d.ours})`).join(', ')}`);
  expect(
    unlisted.map((d) => `${d.path}: ${PAIR[0]}=${d.ref} ${PAIR[1]}=${d.ours}`),
    `differences not listed in README.md "Differences from spire-agent":\n${agents[1]!.logTail(20)}`,
  ).toEqual([]);
}

describe.skipIf(plan.skip)(`differential: ${PAIR[0]} vs ${PAIR[1]} on one spire-server`, () => {
  beforeAll(startBoth);
  afterAll(() => cleanup.run());

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
    const fields = new Set([...flatten(ref).keys(), ...flatten(ours).keys()]);
    for (const p of fields) compared.add(p);
    expect(fields.size, 'fields compared').toBeGreaterThanOrEqual(MIN_FIELDS.get(uid)!);

    // The comparator, on this very payload: a field changed in ours is reported, and only that one.
    const tampered = clone(ours);
    if (tampered.ok) tampered.x509Svids.at(-1).chain[0].keyType += ' (tampered)';
    else tampered.code = 'Unknown';
    const injected = diff(ours, tampered).map((d) => d.path);
    expect(injected).toEqual([tampered.ok ? `x509Svids[${tampered.x509Svids.length - 1}].chain[0].keyType` : 'code']);

    expectListed(ref, ours);
  });

  it('grpc.health.v1 (Check without and with a service name, Watch): the same, or the difference is in the README', async () => {
    const [ref, ours] = (await Promise.all(agents.map(async (a) => ({ health: await healthCanon(a.socketPath) })))) as [{ health: Awaited<ReturnType<typeof healthCanon>> }, unknown];
    if (process.env.DIFF_DUMP) writeFileSync(`${process.env.DIFF_DUMP}-health.json`, JSON.stringify({ [PAIR[0]]: ref, [PAIR[1]]: ours }, null, 2));
    // Both agents are ready here (every workload got its SVIDs), so the plain Check is SERVING from both.
    expect(ref.health.check).toEqual({ status: 'SERVING' });
    const fields = new Set([...flatten(ref).keys(), ...flatten(ours).keys()]);
    for (const p of fields) compared.add(p);
    expect(fields.size, 'fields compared').toBeGreaterThanOrEqual(3);
    expectListed(ref, ours);
  });

  it('every path the README allows to differ is one the comparison saw (a stale or misspelt row fails)', () => {
    expect(compared.size, 'the three comparisons ran').toBeGreaterThanOrEqual(MIN_FIELDS.get(UID_A)! + MIN_FIELDS.get(UID_NONE)!);
    const unseen = readAllowList().filter((r) => ![...compared].some((p) => r.re.test(p)));
    expect(unseen.map((r) => `${r.key}: ${r.pattern}`)).toEqual([]);
  });
});
