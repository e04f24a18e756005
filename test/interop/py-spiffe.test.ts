/**
 * Real peer: py-spiffe (PyPI `spiffe`, pinned in py/requirements.txt) WorkloadApiClient, run from
 * setup.sh's venv as distinct Unix uids against the compiled spiffe-agent daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentUnderTest,
  PY_FETCH,
  TD,
  UID_A,
  UID_NONE,
  VENV_PYTHON,
  assertPrerequisites,
  explain,
  runAs,
  uidEntry,
} from './harness.js';

const ID_A = `spiffe://${TD}/a`;

let agent: AgentUnderTest;

beforeAll(async () => {
  assertPrerequisites({ python: true });
  agent = await AgentUnderTest.start({ entries: [uidEntry(ID_A, UID_A)], x509SvidTtl: '20s', jwtSvidTtl: '5m' });
});

afterAll(async () => {
  await agent?.stop();
});

describe('py-spiffe WorkloadApiClient against spiffe-agent', () => {
  it('py-spiffe as uid 1001 fetches and validates both an X.509-SVID and a JWT-SVID for spiffe://example.org/a', async () => {
    const audience = `spiffe://${TD}/py-audience`;
    const r = await runAs(UID_A, agent, VENV_PYTHON, [PY_FETCH, '--audience', audience]);
    expect(r.code, explain(r, agent)).toBe(0);
    const out = r.json;
    expect(out.ok).toBe(true);
    expect(out.x509Svids.map((s: { spiffeId: string }) => s.spiffeId)).toEqual([ID_A]);
    // verify_chain walked leaf -> ... -> a bundle authority: at least leaf + root.
    expect(out.x509Svids[0].verifiedChainLength).toBeGreaterThanOrEqual(2);
    expect(Date.parse(out.x509Svids[0].notAfter)).toBeGreaterThan(Date.now());
    // py-spiffe keys bundles by trust domain name.
    expect(out.x509ContextTrustDomains).toEqual([TD]);
    expect(out.x509BundleTrustDomains).toEqual([TD]);
    // JwtSvid.parse_and_validate (local, with the fetched JWT bundle) and ValidateJWTSVID (agent) agree.
    expect(out.jwtSvid.sub).toBe(ID_A);
    expect(out.jwtSvid.aud).toEqual([audience]);
    expect(out.jwtSvid.validatedBy).toBe(ID_A);
    expect(out.jwtBundleTrustDomains).toEqual([TD]);
    expect(out.jwtAuthorityKeyIds.length).toBeGreaterThanOrEqual(1);
  });

  it('py-spiffe as uid 1003 (no entry) is refused with PERMISSION_DENIED', async () => {
    const r = await runAs(UID_NONE, agent, VENV_PYTHON, [PY_FETCH, '--timeout', '15']);
    expect(r.code, explain(r, agent)).toBe(1);
    expect(r.json?.step, explain(r, agent)).toBe('fetch_x509_context');
    expect(r.json?.code, explain(r, agent)).toBe('PERMISSION_DENIED');
  });
});
