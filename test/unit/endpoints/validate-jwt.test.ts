/**
 * ValidateJWTSVID as a caller sees it: keys come only from the caller's bundle view
 * (own trust domain plus federated bundles of its entries); foreign tokens are cut down
 * to sub/aud/exp plus allowed_foreign_jwt_claims; every failure is INVALID_ARGUMENT.
 * Tokens are real, signed by TestCA keys.
 */
import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TrustBundle } from '../../../src/authority/types.js';
import type { BundleView } from '../../../src/cache/manager.js';
import { validateForCaller } from '../../../src/endpoints/workload/validate-jwt.js';
import { StatusError } from '../../../src/endpoints/status.js';
import { TestCA } from '../../helpers/test-ca.js';

let own: TestCA;
let partner: TestCA;
let stranger: TestCA;
let ownView: BundleView;
let federatedView: BundleView;

function trustBundle(ca: TestCA): TrustBundle {
  return {
    trustDomain: ca.trustDomain.name,
    x509Authorities: [ca.der()],
    jwtAuthorities: [...ca.jwtBundle().keys()].map(([keyId, publicKey]) => ({ keyId, publicKey, expiresAt: 0 })),
    sequenceNumber: 1,
    refreshHintSeconds: 0,
  };
}

beforeAll(async () => {
  [own, partner, stranger] = await Promise.all([TestCA.create('example.org'), TestCA.create('partner.org'), TestCA.create('stranger.org')]);
  ownView = { bundle: trustBundle(own), federatedBundles: new Map() };
  federatedView = { bundle: trustBundle(own), federatedBundles: new Map([['partner.org', trustBundle(partner)]]) };
});

const NOW = new Date();
const nowS = Math.floor(NOW.getTime() / 1000);
const str = (s: string) => ({ stringValue: s });
const list = (...xs: string[]) => ({ listValue: { values: xs.map(str) } });

async function rejection(p: Promise<unknown>): Promise<StatusError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StatusError);
  return err as StatusError;
}

describe('ValidateJWTSVID: accepted tokens', () => {
  it.each([
    { what: 'a list aud', aud: ['svc-a', 'svc-b'], rawAud: undefined, want: list('svc-a', 'svc-b') },
    { what: 'a single-string aud', aud: [], rawAud: 'svc-a', want: list('svc-a') },
  ])('accepts an own-trust-domain token with $what and returns aud as a list', async ({ aud, rawAud, want }) => {
    const token = await own.createJWTSVID('spiffe://example.org/web', aud, { rawAud, exp: nowS + 300, iat: nowS });
    const r = await validateForCaller(token, 'svc-a', ownView, [], NOW);
    expect(r.spiffe_id).toBe('spiffe://example.org/web');
    const fields = (r.claims as { fields: Record<string, unknown> }).fields;
    expect(fields.aud).toEqual(want);
    expect(fields.sub).toEqual(str('spiffe://example.org/web'));
    expect(fields.exp).toEqual({ numberValue: nowS + 300 });
    expect(fields.iat).toEqual({ numberValue: nowS });
  });

  it('returns every claim of an own-trust-domain token, structured values included', async () => {
    const token = await own.createJWTSVID('spiffe://example.org/web', ['svc'], {
      exp: nowS + 60,
      extraClaims: { email: 'a@example.org', admin: true, groups: ['x', 'y'], ctx: { n: 1 }, none: null },
    });
    const fields = ((await validateForCaller(token, 'svc', ownView, [], NOW)).claims as { fields: Record<string, unknown> }).fields;
    expect(Object.keys(fields).sort()).toEqual(['admin', 'aud', 'ctx', 'email', 'exp', 'groups', 'iat', 'none', 'sub']);
    expect(fields.email).toEqual(str('a@example.org'));
    expect(fields.admin).toEqual({ boolValue: true });
    expect(fields.groups).toEqual(list('x', 'y'));
    expect(fields.ctx).toEqual({ structValue: { fields: { n: { numberValue: 1 } } } });
    expect(fields.none).toEqual({ nullValue: 'NULL_VALUE' });
  });

  it.each(['ES256', 'ES384', 'RS256', 'PS256'])('accepts a token signed with %s', async (alg) => {
    const token = await own.createJWTSVID('spiffe://example.org/web', ['svc'], { alg, exp: nowS + 60 });
    await expect(validateForCaller(token, 'svc', ownView, [], NOW)).resolves.toMatchObject({ spiffe_id: 'spiffe://example.org/web' });
  });

  it('accepts a token that expired less than the one-minute leeway ago', async () => {
    const token = await own.createJWTSVID('spiffe://example.org/web', ['svc'], { exp: nowS - 30, iat: nowS - 300 });
    await expect(validateForCaller(token, 'svc', ownView, [], NOW)).resolves.toMatchObject({ spiffe_id: 'spiffe://example.org/web' });
  });

  it('keeps only sub, aud, exp and the allowed claims of a token from a federated trust domain', async () => {
    const token = await partner.createJWTSVID('spiffe://partner.org/api', ['svc'], {
      rawAud: 'svc',
      exp: nowS + 60,
      nbf: nowS - 5,
      extraClaims: { email: 'p@partner.org', role: 'admin', jti: 'j1' },
    });
    const r = await validateForCaller(token, 'svc', federatedView, ['email'], NOW);
    expect(r.spiffe_id).toBe('spiffe://partner.org/api');
    expect(r.claims).toEqual({
      fields: { sub: str('spiffe://partner.org/api'), aud: list('svc'), exp: { numberValue: nowS + 60 }, email: str('p@partner.org') },
    });
  });

  it('keeps nothing extra from a foreign token when no claims are allowed', async () => {
    const token = await partner.createJWTSVID('spiffe://partner.org/api', ['svc'], { exp: nowS + 60, extraClaims: { email: 'p@partner.org' } });
    const fields = ((await validateForCaller(token, 'svc', federatedView, [], NOW)).claims as { fields: Record<string, unknown> }).fields;
    expect(Object.keys(fields).sort()).toEqual(['aud', 'exp', 'sub']);
  });
});

describe('ValidateJWTSVID: rejected tokens are INVALID_ARGUMENT', () => {
  const cases: { name: string; make: () => Promise<string>; view?: () => BundleView; message: RegExp }[] = [
    {
      name: 'a token from a trust domain with no bundle in the caller view',
      make: () => stranger.createJWTSVID('spiffe://stranger.org/x', ['svc'], { exp: nowS + 60 }),
      message: /no bundle.*stranger\.org/,
    },
    {
      name: 'a federated token when the caller does not federate with that trust domain',
      make: () => partner.createJWTSVID('spiffe://partner.org/api', ['svc'], { exp: nowS + 60 }),
      view: () => ownView,
      message: /no bundle.*partner\.org/,
    },
    { name: 'the wrong audience', make: () => own.createJWTSVID('spiffe://example.org/web', ['other'], { exp: nowS + 60 }), message: /audience/ },
    { name: 'an expired token', make: () => own.createJWTSVID('spiffe://example.org/web', ['svc'], { exp: nowS - 120, iat: nowS - 600 }), message: /expired/ },
    { name: 'a token not valid yet', make: () => own.createJWTSVID('spiffe://example.org/web', ['svc'], { exp: nowS + 600, nbf: nowS + 300 }), message: /not valid yet/ },
    { name: 'alg none', make: () => own.createJWTSVID('spiffe://example.org/web', ['svc'], { alg: 'none', exp: nowS + 60 }), message: /algorithm/ },
    { name: 'alg HS256', make: () => own.createJWTSVID('spiffe://example.org/web', ['svc'], { alg: 'HS256', exp: nowS + 60 }), message: /algorithm/ },
    { name: 'a missing kid', make: () => own.createJWTSVID('spiffe://example.org/web', ['svc'], { omit: ['kid'], exp: nowS + 60 }), message: /key id/ },
    { name: 'an unknown kid', make: () => own.createJWTSVID('spiffe://example.org/web', ['svc'], { kid: 'nope', exp: nowS + 60 }), message: /nope/ },
    { name: 'a missing sub', make: () => own.createJWTSVID('spiffe://example.org/web', ['svc'], { omit: ['sub'], exp: nowS + 60 }), message: /sub/ },
    { name: 'a missing exp', make: () => own.createJWTSVID('spiffe://example.org/web', ['svc'], { omit: ['exp'] }), message: /exp/ },
    {
      name: 'a tampered payload',
      make: async () => {
        const [h, , s] = (await own.createJWTSVID('spiffe://example.org/web', ['svc'], { exp: nowS + 60 })).split('.');
        const forged = Buffer.from(JSON.stringify({ sub: 'spiffe://example.org/admin', aud: ['svc'], exp: nowS + 60 })).toString('base64url');
        return `${h}.${forged}.${s}`;
      },
      message: /signature/,
    },
    {
      name: 'an own-trust-domain sub signed with a federated key (kid of partner.org)',
      make: async () => {
        const foreignKid = [...partner.jwtBundle().keys().keys()].find((k) => k.startsWith('es256'))!;
        const t = await partner.createJWTSVID('spiffe://example.org/admin', ['svc'], { exp: nowS + 60 });
        expect(JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()).kid).toBe(foreignKid);
        return t;
      },
      view: () => federatedView,
      message: /no JWT authority/,
    },
    { name: 'not a JWT at all', make: async () => 'not-a-token', message: /./ },
  ];

  it.each(cases)('rejects $name', async ({ make, view, message }) => {
    const err = await rejection(validateForCaller(await make(), 'svc', view ? view() : federatedView, ['email'], NOW));
    expect(err.status).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.message).toMatch(message);
  });
});
