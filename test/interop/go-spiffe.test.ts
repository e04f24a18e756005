/**
 * Real peer: go-spiffe v2.8.1 (the library SPIRE's own tooling and most Go workloads use), built by
 * setup.sh into go-client and run as distinct Unix uids against the compiled spiffe-agent daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentUnderTest,
  TD,
  UID_A,
  UID_B,
  UID_NONE,
  assertPrerequisites,
  explain,
  runAs,
  sleep,
  uidEntry,
} from './harness.js';

const ID_A = `spiffe://${TD}/a`;
const ID_B = `spiffe://${TD}/b`;
const ID_NONE_LATE = `spiffe://${TD}/late`;
const ENTRIES = [uidEntry(ID_A, UID_A), uidEntry(ID_B, UID_B)];

let agent: AgentUnderTest;

beforeAll(async () => {
  assertPrerequisites();
  agent = await AgentUnderTest.start({ entries: ENTRIES, x509SvidTtl: '20s', jwtSvidTtl: '5m' });
});

afterAll(async () => {
  await agent?.stop();
});

describe('go-spiffe workloadapi against spiffe-agent', () => {
  it('go-spiffe FetchX509Context/FetchJWTSVID/FetchJWTBundles as uid 1001 yields spiffe://example.org/a, verified locally', async () => {
    const audience = `spiffe://${TD}/some-service`;
    const r = await runAs(UID_A, agent, agent.goClient, ['fetch', '-audience', audience]);
    expect(r.code, explain(r, agent)).toBe(0);
    const out = r.json;
    expect(out.ok).toBe(true);
    expect(out.x509Svids).toHaveLength(1);
    const svid = out.x509Svids[0];
    expect(svid.spiffeId).toBe(ID_A);
    expect(svid.verifiedId).toBe(ID_A); // x509svid.Verify against the bundle the agent served
    expect(svid.uriSans).toEqual([ID_A]);
    // The configured 20 s TTL reaches the certificate (allowing a little backdating of notBefore).
    const lifetime = Date.parse(svid.notAfter) - Date.parse(svid.notBefore);
    expect(lifetime).toBeGreaterThanOrEqual(15_000);
    expect(lifetime).toBeLessThanOrEqual(90_000);
    expect(Date.parse(svid.notAfter)).toBeGreaterThan(Date.now());
    expect(out.x509BundleTrustDomains).toEqual([`spiffe://${TD}`]);
    // jwtsvid.ParseAndValidate with the fetched JWT bundles succeeded; check what it returned.
    expect(out.jwtSvid.sub).toBe(ID_A);
    expect(out.jwtSvid.aud).toEqual([audience]);
    expect(out.jwtBundleTrustDomains).toEqual([`spiffe://${TD}`]);
    const expMs = Date.parse(out.jwtSvid.exp);
    expect(expMs).toBeGreaterThan(Date.now());
    expect(expMs).toBeLessThanOrEqual(Date.now() + 5 * 60_000 + 5_000);
  });

  it('go-spiffe as uid 1002 gets its own identity spiffe://example.org/b, not a', async () => {
    const r = await runAs(UID_B, agent, agent.goClient, ['fetch']);
    expect(r.code, explain(r, agent)).toBe(0);
    expect(r.json.x509Svids.map((s: { spiffeId: string }) => s.spiffeId)).toEqual([ID_B]);
    expect(r.json.jwtSvid.sub).toBe(ID_B);
  });

  it('go-spiffe as uid 1003 (no entry) is refused with PermissionDenied', async () => {
    const r = await runAs(UID_NONE, agent, agent.goClient, ['fetch', '-timeout', '15s']);
    expect(r.code, explain(r, agent)).toBe(1);
    expect(r.json?.step, explain(r, agent)).toBe('FetchX509Context');
    expect(r.json?.code, explain(r, agent)).toBe('PermissionDenied');
  });

  it('JWT round trip: go-spiffe FetchJWTSVID as a, then go-spiffe ValidateJWTSVID as b', async () => {
    const fetched = await runAs(UID_A, agent, agent.goClient, ['fetch', '-audience', ID_B, '-emit-token']);
    expect(fetched.code, explain(fetched, agent)).toBe(0);
    const token: string = fetched.json.jwtSvid.token;
    expect(token.split('.')).toHaveLength(3);

    const ok = await runAs(UID_B, agent, agent.goClient, ['validate-jwt', '-token', token, '-audience', ID_B]);
    expect(ok.code, explain(ok, agent)).toBe(0);
    expect(ok.json.sub).toBe(ID_A);
    expect(ok.json.aud).toEqual([ID_B]);

    // The agent, not the client, must reject a token for another audience ...
    const wrongAud = await runAs(UID_B, agent, agent.goClient, ['validate-jwt', '-token', token, '-audience', `spiffe://${TD}/other`]);
    expect(wrongAud.code, explain(wrongAud, agent)).toBe(1);
    expect(wrongAud.json?.code, explain(wrongAud, agent)).toBe('InvalidArgument');

    // ... and a token whose signature no longer matches its payload.
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    const badSig = await runAs(UID_B, agent, agent.goClient, ['validate-jwt', '-token', flipped, '-audience', ID_B]);
    expect(badSig.code, explain(badSig, agent)).toBe(1);
    expect(badSig.json?.code, explain(badSig, agent)).toBe('InvalidArgument');
  });

  it('entries file edits are seen by go-spiffe: uid 1003 gets an identity once an entry appears', async () => {
    await agent.writeEntries([...ENTRIES, uidEntry(ID_NONE_LATE, UID_NONE)]);
    try {
      let last = await runAs(UID_NONE, agent, agent.goClient, ['fetch', '-timeout', '10s']);
      const deadline = Date.now() + 30_000;
      while (last.code !== 0 && Date.now() < deadline) {
        await sleep(1_000);
        last = await runAs(UID_NONE, agent, agent.goClient, ['fetch', '-timeout', '10s']);
      }
      expect(last.code, explain(last, agent)).toBe(0);
      expect(last.json.x509Svids.map((s: { spiffeId: string }) => s.spiffeId)).toEqual([ID_NONE_LATE]);
    } finally {
      await agent.writeEntries(ENTRIES);
    }
  });
});
