/**
 * Per-entry knobs through the real daemon: duplicate hints resolved oldest-first (for
 * X.509 and JWT), x509_svid_ttl, and dns_names. Callers are real CLI processes under
 * distinct uids; certificates are read back with node:crypto.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, cli, field, sleep, uidEntry, type EntryJson } from '../helpers/agent-process.js';

let agent: AgentProcess;
const HINT = { uid: 1321, gid: 1321 };
const TTL = { uid: 1322, gid: 1322 };
const DNS = { uid: 1323, gid: 1323 };

// The older entry has the larger entry ID, so "lowest ID wins" would pick the wrong one.
const older = uidEntry('/hint-old', HINT.uid, { entry_id: 'zzz-old', hint: 'shared' });
const newer = uidEntry('/hint-new', HINT.uid, { entry_id: 'aaa-new', hint: 'shared' });
const unhinted = uidEntry('/no-hint', HINT.uid, { entry_id: 'mmm-none' });
const base: EntryJson[] = [
  older,
  uidEntry('/short', TTL.uid, { x509_svid_ttl: 120 }),
  uidEntry('/web', DNS.uid, { dns_names: ['web.example.org', 'alt.example.org'] }),
];

beforeAll(async () => {
  agent = await AgentProcess.start({ entries: base });
  // created_at has one-second resolution: make sure the newer entry is created in a later second.
  await sleep(1_200);
  await agent.writeEntries([...base, newer, unhinted]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath], HINT);
    if (r.stdout.includes('spiffe://example.org/no-hint')) break;
    if (Date.now() > deadline) throw new Error(`entries reload not seen:\n${r.stdout}${r.stderr}`);
    await sleep(200);
  }
});
afterAll(async () => agent?.stop());

const sock = (): string[] => ['-socketPath', agent.socketPath];

async function writtenLeaf(ids: { uid: number; gid: number }): Promise<X509Certificate[]> {
  const dir = mkdtempSync('/tmp/spiffe-caps-');
  chmodSync(dir, 0o777);
  try {
    const r = await cli(['api', 'fetch', 'x509', ...sock(), '-write', dir], ids);
    expect(r.code).toBe(0);
    const n = field(r.stdout, 'SPIFFE ID').length;
    return Array.from({ length: n }, (_, i) => new X509Certificate(readFileSync(join(dir, `svid.${i}.pem`))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('hints', () => {
  it('serves only the first-created of two entries with the same hint as X.509-SVIDs, next to unhinted ones', async () => {
    const r = await cli(['api', 'fetch', 'x509', ...sock()], HINT);
    expect(r.code).toBe(0);
    expect(field(r.stdout, 'SPIFFE ID').sort()).toEqual(['spiffe://example.org/hint-old', 'spiffe://example.org/no-hint']);
    expect(field(r.stdout, 'Hint')).toEqual(['shared']);
  });

  it('mints JWT-SVIDs only for the first-created of two entries with the same hint', async () => {
    const r = await cli(['api', 'fetch', 'jwt', ...sock(), '-audience', 'svc'], HINT);
    expect(r.code).toBe(0);
    const subs = [...r.stdout.matchAll(/\beyJ[\w-]+\.([\w-]+)\.[\w-]+/g)].map((m) => (JSON.parse(Buffer.from(m[1]!, 'base64url').toString()) as { sub: string }).sub);
    expect(subs.sort()).toEqual(['spiffe://example.org/hint-old', 'spiffe://example.org/no-hint']);
    expect([...r.stdout.matchAll(/^token\((.+)\):$/gm)].map((m) => m[1]).sort()).toEqual(['spiffe://example.org/hint-old', 'spiffe://example.org/no-hint']);
  });

  it('refuses a JWT-SVID for the hidden duplicate even when asked for it by SPIFFE ID', async () => {
    const r = await cli(['api', 'fetch', 'jwt', ...sock(), '-audience', 'svc', '-spiffeID', 'spiffe://example.org/hint-new'], HINT);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toMatch(/eyJ/);
    expect(r.stderr).toMatch(/PermissionDenied|no identity/i);
  });
});

describe('x509_svid_ttl', () => {
  it('gives an SVID valid for the entry TTL plus the 10 s backdate', async () => {
    const [leaf] = await writtenLeaf(TTL);
    const from = Date.parse(leaf!.validFrom);
    const to = Date.parse(leaf!.validTo);
    expect((to - from) / 1000).toBeGreaterThanOrEqual(129);
    expect((to - from) / 1000).toBeLessThanOrEqual(131);
    expect(from).toBeLessThanOrEqual(Date.now() - 9_000);
    expect(leaf!.subjectAltName).toContain('URI:spiffe://example.org/short');
  });

  it('uses the default TTL, much longer than 120 s, for an entry without x509_svid_ttl', async () => {
    const [leaf] = await writtenLeaf(DNS);
    expect((Date.parse(leaf!.validTo) - Date.parse(leaf!.validFrom)) / 1000).toBeGreaterThan(600);
  });
});

describe('dns_names', () => {
  it('puts every DNS name in the SAN, after the SPIFFE ID, and the first one in the subject CN', async () => {
    const [leaf] = await writtenLeaf(DNS);
    expect(leaf!.subjectAltName).toBe('URI:spiffe://example.org/web, DNS:web.example.org, DNS:alt.example.org');
    expect(leaf!.subject.split('\n')).toContain('CN=web.example.org');
  });

  it('leaves the subject without a CN when the entry has no DNS names', async () => {
    const [leaf] = await writtenLeaf(TTL);
    expect(leaf!.subject).not.toMatch(/CN=/);
    expect(leaf!.subjectAltName).not.toMatch(/DNS:/);
  });
});
