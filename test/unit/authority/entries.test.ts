import { describe, it, expect, afterEach } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EmbeddedAuthority, parseEntriesFile, type EntriesFileError } from '../../../src/authority/embedded/index.js';
import type { AuthoritySnapshot } from '../../../src/authority/types.js';
import { FakeClock } from './fake-clock.js';
import { config, RecordingLogger, tempDir } from './helpers.js';

const TD = 'example.org';
const good = (over: Record<string, unknown> = {}) => ({
  spiffe_id: 'spiffe://example.org/web',
  parent_id: 'spiffe://example.org/spire/agent/x',
  selectors: [{ type: 'unix', value: 'uid:1000' }],
  ...over,
});
const file = (entries: unknown[]) => JSON.stringify({ entries }, null, 2);

function problems(text: string): { path: string; line: number; message: string }[] {
  try {
    parseEntriesFile('/etc/entries.json', text, TD);
  } catch (err) {
    expect((err as EntriesFileError).message).toContain('/etc/entries.json');
    return (err as EntriesFileError).problems;
  }
  throw new Error('expected the file to be rejected');
}

describe('entries file parsing', () => {
  it('reads the spire-server "entry create -data" shape, legacy ttl and camelCase names included', () => {
    const defs = parseEntriesFile('f', file([
      good({ x509_svid_ttl: 3600, jwt_svid_ttl: 300, dns_names: ['web.example.org'], hint: 'h', federates_with: ['other.org', 'spiffe://third.org'], admin: true, entry_id: 'my-id' }),
      { spiffeId: 'spiffe://example.org/db', parentId: 'spiffe://example.org/a', selectors: [{ type: 'k8s', value: 'ns:default' }], ttl: 200, downstream: true },
    ]), TD);
    expect(defs[0]).toMatchObject({ id: 'my-id', x509SvidTtl: 3600, jwtSvidTtl: 300, dnsNames: ['web.example.org'], federatesWith: ['other.org', 'third.org'], admin: true });
    expect(defs[1]).toMatchObject({ spiffeId: 'spiffe://example.org/db', x509SvidTtl: 200, downstream: true });
    expect(defs[1]?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('derives the same id whatever the selector order', () => {
    const sel = [{ type: 'unix', value: 'uid:1' }, { type: 'unix', value: 'gid:2' }];
    const [a] = parseEntriesFile('f', file([good({ selectors: sel })]), TD);
    const [b] = parseEntriesFile('f', file([good({ selectors: [...sel].reverse(), hint: 'changed' })]), TD);
    expect(a?.id).toBe(b?.id);
  });

  it.each([
    ['a bad SPIFFE ID', [good(), good({ spiffe_id: 'spiffe://Example.org/x' })], 'entries[1].spiffe_id', /not a valid SPIFFE ID/],
    ['a SPIFFE ID of another trust domain', [good({ spiffe_id: 'spiffe://other.org/x' })], 'entries[0].spiffe_id', /trust domain "example.org"/],
    ['a selector type containing ":"', [good(), good(), good({ selectors: [{ type: 'unix:uid', value: '1000' }] })], 'entries[2].selectors[0].type', /must not contain ":"/],
    ['empty selectors', [good({ selectors: [] })], 'entries[0].selectors', /at least one selector/],
    ['missing selectors', [{ spiffe_id: 'spiffe://example.org/a', parent_id: 'spiffe://example.org/p' }], 'entries[0].selectors', /is required/],
    ['a TTL of the wrong type', [good({ x509_svid_ttl: '1h' })], 'entries[0].x509_svid_ttl', /integer/],
    ['a negative TTL', [good({ jwt_svid_ttl: -1 })], 'entries[0].jwt_svid_ttl', /negative/],
    ['a non-boolean admin', [good({ admin: 'yes' })], 'entries[0].admin', /true or false/],
    ['an unknown key', [good({ spiffeid: 'x' })], 'entries[0].spiffeid', /unknown key/],
    ['a selector with an unknown key', [good({ selectors: [{ type: 'unix', value: 'uid:1', extra: 1 }] })], 'entries[0].selectors[0].extra', /unknown key/],
    ['an empty selector value', [good({ selectors: [{ type: 'unix', value: '' }] })], 'entries[0].selectors[0].value', /non-empty/],
    ['a bad DNS name', [good({ dns_names: ['bad name'] })], 'entries[0].dns_names[0]', /not a valid DNS name/],
    ['a bad federated trust domain', [good({ federates_with: ['Bad.Org'] })], 'entries[0].federates_with[0]', /Bad.Org/],
    ['a duplicate entry', [good(), good()], 'entries[1].entry_id', /same as entries\[0\]/],
    ['a missing parent_id', [{ spiffe_id: 'spiffe://example.org/a', selectors: [{ type: 'unix', value: 'uid:1' }] }], 'entries[0].parent_id', /is required/],
  ])('rejects %s, naming the dotted path', (_name, entries, path, message) => {
    const found = problems(file(entries));
    expect(found.map((p) => p.path)).toContain(path);
    expect(found.find((p) => p.path === path)?.message).toMatch(message);
  });

  it('points at the line of the offending value', () => {
    const text = file([good(), good({ spiffe_id: 'spiffe://example.org/b', selectors: [{ type: 'unix:x', value: 'v' }] })]);
    const [p] = problems(text);
    const expected = text.split('\n').findIndex((l) => l.includes('"unix:x"')) + 1;
    expect(p).toMatchObject({ path: 'entries[1].selectors[0].type', line: expected });
  });

  it('reports invalid JSON with a line number, and unknown top-level keys', () => {
    expect(problems('{\n "entries": [\n  {,\n ]\n}')[0]).toMatchObject({ path: '', line: 3 });
    expect(problems('{"entries": [], "extra": 1}')[0]).toMatchObject({ path: 'extra', message: expect.stringMatching(/unknown key/) });
    expect(problems('[]')[0]?.message).toMatch(/"entries"/);
  });

  it('reports a duplicate JSON key that JSON.parse would silently drop', () => {
    expect(problems('{"entries": [{"spiffe_id": "spiffe://example.org/a", "spiffe_id": "spiffe://example.org/b", "parent_id": "spiffe://example.org/p", "selectors": [{"type":"unix","value":"uid:1"}]}]}')[0]).toMatchObject({ path: 'entries[0].spiffe_id', message: 'duplicate key' });
  });
});

describe('entries in the embedded authority', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()?.();
  });

  async function setup(text: string): Promise<{ a: EmbeddedAuthority; path: string; clock: FakeClock; log: RecordingLogger }> {
    const d = await tempDir();
    cleanups.push(d.remove);
    const path = join(d.path, 'entries.json');
    await writeFile(path, text);
    const clock = new FakeClock();
    const log = new RecordingLogger();
    const a = new EmbeddedAuthority({ trustDomain: TD, dataDir: d.path, config: config({ entriesFile: path }), clock, log });
    await a.start(new AbortController().signal);
    cleanups.push(() => a.close());
    return { a, path, clock, log };
  }

  it('serves zero entries when no entries file is configured', async () => {
    const d = await tempDir();
    cleanups.push(d.remove);
    const a = new EmbeddedAuthority({ trustDomain: TD, dataDir: d.path, config: config(), clock: new FakeClock(), log: new RecordingLogger() });
    await a.start(new AbortController().signal);
    cleanups.push(() => a.close());
    expect(a.snapshot().entries).toEqual([]);
  });

  it('refuses to start on a broken entries file, and says so: at start there are no previous entries to keep', async () => {
    const d = await tempDir();
    cleanups.push(d.remove);
    const path = join(d.path, 'entries.json');
    await writeFile(path, file([good({ selectors: [] })]));
    const log = new RecordingLogger();
    const a = new EmbeddedAuthority({ trustDomain: TD, dataDir: d.path, config: config({ entriesFile: path }), clock: new FakeClock(), log });
    const err = await a.start(new AbortController().signal).then(
      () => undefined,
      (e: unknown) => e as EntriesFileError,
    );
    expect(err).toMatchObject({ code: 'entries_file' });
    expect(err?.message).toContain('entries[0].selectors');
    expect(err?.message).toContain('there are no previous entries to keep, so the agent does not start');
    expect(err?.message).not.toMatch(/previous entries stay/);
    expect(log.records.filter((r) => /previous entries/.test(r.msg))).toEqual([]);
  });

  it('starts with no entries, and says so, while the entries file does not exist yet', async () => {
    const d = await tempDir();
    cleanups.push(d.remove);
    const log = new RecordingLogger();
    const a = new EmbeddedAuthority({ trustDomain: TD, dataDir: d.path, config: config({ entriesFile: join(d.path, 'later.json') }), clock: new FakeClock(), log });
    await a.start(new AbortController().signal);
    cleanups.push(() => a.close());
    expect(a.snapshot().entries).toEqual([]);
    expect(log.records.map((r) => r.msg)).toContain('Registration entries file does not exist; serving no entries until it appears');
  });

  it('keeps the previous entries when a reload finds a broken file, and says why', async () => {
    const { a, path } = await setup(file([good()]));
    const before = a.snapshot().entries;
    await writeFile(path, file([good({ spiffe_id: 'not-an-id' })]));
    await expect(a.reload()).rejects.toThrow(/entries\[0\]\.spiffe_id/);
    await expect(a.reload()).rejects.toThrow(/the previous entries stay in use/);
    expect(a.snapshot().entries).toBe(before);
    expect(before).toHaveLength(1);
  });

  it('keeps ids and createdAt across reloads and bumps revisionNumber only for changed entries', async () => {
    const { a, path, clock } = await setup(file([good(), good({ spiffe_id: 'spiffe://example.org/db' })]));
    const [web, db] = a.snapshot().entries;
    clock.advance(60_000);
    await writeFile(path, file([good({ x509_svid_ttl: 600 }), good({ spiffe_id: 'spiffe://example.org/db' })]));
    await a.reload();
    const [web2, db2] = a.snapshot().entries;
    expect(web2).toMatchObject({ id: web?.id, createdAt: web?.createdAt, revisionNumber: 1, x509SvidTtl: 600 });
    expect(db2).toBe(db);
  });

  it('notices an edit through the periodic check and fires onChange with the new entries', async () => {
    const { a, path, clock } = await setup(file([good()]));
    const changed = new Promise<AuthoritySnapshot>((resolve) => a.onChange(resolve));
    await writeFile(path, file([good(), good({ spiffe_id: 'spiffe://example.org/new' })]));
    // Drive the Clock until the watcher (fs.watch debounce or 2 s stat poll) has reloaded.
    let snap: AuthoritySnapshot | undefined;
    void changed.then((s) => (snap = s));
    for (let i = 0; i < 50 && !snap; i++) {
      clock.advance(1000);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(snap?.entries.map((e) => e.spiffeId)).toEqual(['spiffe://example.org/web', 'spiffe://example.org/new']);
  });

  it('logs a broken file found by the watcher as an error and keeps serving', async () => {
    const { a, path, clock, log } = await setup(file([good()]));
    await writeFile(path, '{ broken');
    for (let i = 0; i < 50 && !log.records.some((r) => r.level === 'error'); i++) {
      clock.advance(1000);
      await new Promise((r) => setTimeout(r, 20));
    }
    const err = log.records.find((r) => r.level === 'error');
    expect(err?.msg).toMatch(/keeping the previous entries/);
    expect(String(err?.obj['error'])).toContain(path);
    expect(a.snapshot().entries).toHaveLength(1);
  });
});
