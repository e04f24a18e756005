import { beforeAll, describe, expect, it } from 'vitest';
import {
  ALLOWED_JWT_ALGS as CODE_ALLOWED_JWT_ALGS,
  BundleSet,
  JWTSVIDError,
  parseInsecureJWTSVID,
  validateJWTSVID,
  type JWTBundle,
} from '../../../src/svid/index.js';
import { TestCA, type JWTOptions } from '../../helpers/test-ca.js';

/** SPIRE v1.13.3's AllowedSignatureAlgorithms (pkg/common/jwtsvid/signature.go), pinned. */
const ALLOWED_JWT_ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const SUB = 'spiffe://example.org/workload';
const AUD = ['spiffe://example.org/server'];
const now = () => Math.floor(Date.now() / 1000);

let ca: TestCA;
let other: TestCA;
let bundles: BundleSet<JWTBundle>;

beforeAll(async () => {
  ca = await TestCA.create('example.org');
  other = await TestCA.create('other.org');
  bundles = new BundleSet([ca.jwtBundle(), other.jwtBundle()]);
});

async function reasonOf(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return undefined;
  expect(err).toBeInstanceOf(JWTSVIDError);
  expect(err).toMatchObject({ code: 'jwtsvid_invalid' });
  expect((err as Error).message).toMatch(/^jwtsvid: /);
  return (err as JWTSVIDError).reason;
}

describe('validateJWTSVID', () => {
  it("allows exactly SPIRE's signature algorithms", () => {
    expect([...CODE_ALLOWED_JWT_ALGS].sort()).toEqual([...ALLOWED_JWT_ALGS].sort());
  });

  it.each(ALLOWED_JWT_ALGS.map((alg) => ({ alg })))('accepts a token signed with $alg', async ({ alg }) => {
    const token = await ca.createJWTSVID(SUB, AUD, { alg });
    const svid = await validateJWTSVID(token, bundles, AUD);
    expect(svid.id.toString()).toBe(SUB);
    expect(svid.audience).toEqual(AUD);
    expect(svid.token).toBe(token);
    expect(svid.expiry.getTime()).toBeGreaterThan(Date.now());
    expect(svid.claims['sub']).toBe(SUB);
  });

  it.each<{ name: string; sub?: string; aud?: string[]; opts: JWTOptions }>([
    { name: 'typ JOSE', opts: { extraHeader: { typ: 'JOSE' } } },
    { name: 'no typ', opts: { omit: ['typ'] } },
    { name: 'a string aud', opts: { rawAud: AUD[0] } },
    { name: 'several audiences, one of them ours', aud: ['a', AUD[0] as string, 'b'], opts: {} },
    { name: 'exp just inside the 1 minute leeway', opts: { exp: now() - 30 } },
    { name: 'nbf just inside the leeway', opts: { nbf: now() + 30 } },
  ])('accepts a token with $name', async ({ sub, aud, opts }) => {
    const token = await ca.createJWTSVID(sub ?? SUB, aud ?? AUD, opts);
    expect(await reasonOf(validateJWTSVID(token, bundles, AUD))).toBeUndefined();
  });

  it.each<{ name: string; token: () => Promise<string> | string; reason: string }>([
    { name: 'two segments', token: () => 'aaa.bbb', reason: 'malformed' },
    { name: 'a JWE (five segments)', token: () => 'a.b.c.d.e', reason: 'malformed' },
    { name: 'JSON serialization', token: async () => {
      const [h, p, s] = (await ca.createJWTSVID(SUB, AUD)).split('.');
      return JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s }, { protected: h, signature: s }] });
    }, reason: 'malformed' },
    { name: 'a header that is not JSON', token: () => 'bm90LWpzb24.e30.c2ln', reason: 'malformed' },
    { name: 'alg none', token: () => ca.createJWTSVID(SUB, AUD, { alg: 'none' }), reason: 'alg_not_allowed' },
    { name: 'alg HS256', token: () => ca.createJWTSVID(SUB, AUD, { alg: 'HS256' }), reason: 'alg_not_allowed' },
    { name: 'alg EdDSA', token: () => ca.createJWTSVID(SUB, AUD, { alg: 'EdDSA' }), reason: 'alg_not_allowed' },
    { name: 'typ JWK', token: () => ca.createJWTSVID(SUB, AUD, { extraHeader: { typ: 'at+jwt' } }), reason: 'bad_typ' },
    { name: 'no kid', token: () => ca.createJWTSVID(SUB, AUD, { omit: ['kid'] }), reason: 'missing_kid' },
    { name: 'a kid not in the bundle', token: () => ca.createJWTSVID(SUB, AUD, { kid: 'nope' }), reason: 'unknown_kid' },
    { name: 'no sub', token: () => ca.createJWTSVID(SUB, AUD, { omit: ['sub'] }), reason: 'missing_sub' },
    { name: 'a sub that is not a SPIFFE ID', token: () => ca.createJWTSVID('https://example.org/x', AUD), reason: 'bad_sub' },
    { name: 'a sub in a trust domain without bundle', token: () => ca.createJWTSVID('spiffe://unknown.org/w', AUD), reason: 'no_bundle' },
    { name: 'no exp', token: () => ca.createJWTSVID(SUB, AUD, { omit: ['exp'] }), reason: 'missing_exp' },
    { name: 'exp beyond the leeway', token: () => ca.createJWTSVID(SUB, AUD, { exp: now() - 61 }), reason: 'expired' },
    { name: 'nbf in the future', token: () => ca.createJWTSVID(SUB, AUD, { nbf: now() + 120 }), reason: 'not_yet_valid' },
    { name: 'iat in the future', token: () => ca.createJWTSVID(SUB, AUD, { iat: now() + 120 }), reason: 'not_yet_valid' },
    { name: 'no aud', token: () => ca.createJWTSVID(SUB, AUD, { omit: ['aud'] }), reason: 'bad_audience' },
    { name: 'an empty aud', token: () => ca.createJWTSVID(SUB, [], {}), reason: 'bad_audience' },
    { name: 'an aud without ours', token: () => ca.createJWTSVID(SUB, ['spiffe://example.org/other']), reason: 'bad_audience' },
    { name: 'a tampered payload', token: async () => {
      const [h, , s] = (await ca.createJWTSVID(SUB, AUD)).split('.');
      const p = Buffer.from(JSON.stringify({ sub: SUB, aud: AUD, exp: now() + 9999 })).toString('base64url');
      return `${h}.${p}.${s}`;
    }, reason: 'bad_signature' },
    { name: 'a signature by another trust domain using our kid', token: async () => {
      const kid = JSON.parse(Buffer.from((await ca.createJWTSVID(SUB, AUD)).split('.')[0] as string, 'base64url').toString()).kid;
      return other.createJWTSVID(SUB, AUD, { kid });
    }, reason: 'bad_signature' },
    { name: 'a sub of this domain but a key of another domain', token: async () => {
      const kid = JSON.parse(Buffer.from((await other.createJWTSVID(SUB, AUD)).split('.')[0] as string, 'base64url').toString()).kid;
      return other.createJWTSVID(SUB, AUD, { kid });
    }, reason: 'unknown_kid' },
    { name: 'an alg that does not fit the key (RS256 header, EC kid)', token: async () => {
      const kid = JSON.parse(Buffer.from((await ca.createJWTSVID(SUB, AUD)).split('.')[0] as string, 'base64url').toString()).kid;
      return ca.createJWTSVID(SUB, AUD, { alg: 'RS256', kid });
    }, reason: 'bad_signature' },
  ])('rejects a token with $name', async ({ token, reason }) => {
    expect(await reasonOf(validateJWTSVID(await token(), bundles, AUD))).toBe(reason);
  });

  it('uses the given time for expiry', async () => {
    const token = await ca.createJWTSVID(SUB, AUD, { exp: now() + 300 });
    expect(await reasonOf(validateJWTSVID(token, bundles, AUD, new Date(Date.now() + 400_000)))).toBe('expired');
  });

  it('checks alg before anything else', async () => {
    const token = await ca.createJWTSVID(SUB, AUD, { alg: 'none', omit: ['sub', 'kid', 'exp'] });
    expect(await reasonOf(validateJWTSVID(token, bundles, AUD))).toBe('alg_not_allowed');
  });
});

describe('parseInsecureJWTSVID', () => {
  it('parses without a bundle and without checking the signature', async () => {
    const token = await other.createJWTSVID(SUB, AUD);
    const svid = parseInsecureJWTSVID(token, AUD);
    expect(svid.id.toString()).toBe(SUB);
    expect(svid.audience).toEqual(AUD);
  });

  it.each([
    { opts: { alg: 'none' }, reason: 'alg_not_allowed' },
    { opts: { omit: ['sub'] }, reason: 'missing_sub' },
    { opts: { omit: ['exp'] }, reason: 'missing_exp' },
    { opts: { exp: now() - 3600 }, reason: 'expired' },
  ])('still rejects $reason', async ({ opts, reason }) => {
    const token = await ca.createJWTSVID(SUB, AUD, opts);
    expect(() => parseInsecureJWTSVID(token, AUD)).toThrow(expect.objectContaining({ reason }));
  });
});
