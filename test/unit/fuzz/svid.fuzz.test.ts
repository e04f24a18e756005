/** SPIFFE IDs, X.509-SVIDs and bundles, JWT-SVIDs: only the module's typed errors, and round-trips. */
import { describe, it, expect, beforeAll } from 'vitest';
import {
  BundleError,
  EncodingError,
  JWTBundle,
  JWTSVIDError,
  SpiffeBundle,
  SpiffeId,
  SpiffeIdError,
  TrustDomain,
  X509Bundle,
  X509SVIDError,
  parseInsecureJWTSVID,
  parseSpiffeBundleMap,
  parseX509SVID,
  verifyX509SVID,
  pemDecode,
  pemEncodeCertificates,
  splitDerCertificates,
} from '../../../src/svid/index.js';
import { parseBundleFile } from '../../../src/authority/embedded/federated-bundle-file.js';
import { EmbeddedAuthorityError } from '../../../src/authority/embedded/errors.js';
import { TestCA, type TestX509SVID } from '../../helpers/test-ca.js';
import { fc, jsonishText, onlyTypedErrors, onlyTypedErrorsAsync, fuzz } from './fuzz.js';

const TD = TrustDomain.parse('example.org');
const idChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_/:%@?#'.split(''));
const spiffeish = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: idChar, maxLength: 40 }).map((s) => `spiffe://${s}`),
  fc.tuple(fc.stringMatching(/^[a-z0-9._-]{1,20}$/), fc.array(fc.stringMatching(/^[A-Za-z0-9._-]{1,10}$/), { maxLength: 4 })).map(([td, p]) => `spiffe://${td}${p.map((s) => `/${s}`).join('')}`),
);

/** Flips, drops or inserts a few bytes. */
function mutate(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.array(fc.tuple(fc.nat(Math.max(0, bytes.length - 1)), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'drop', 'insert')), { minLength: 1, maxLength: 4 }).map((edits) => {
    let b = Array.from(bytes);
    for (const [at, v, op] of edits) {
      if (op === 'set') b[at] = v;
      else if (op === 'drop') b.splice(at, 1);
      else b.splice(at, 0, v);
    }
    return new Uint8Array(b);
  });
}

describe('fuzz: SPIFFE ID', () => {
  it('parses or throws SpiffeIdError; what parses prints back to itself', () => {
    fuzz(
      fc.property(spiffeish, (s) => {
        const id = onlyTypedErrors(() => SpiffeId.parse(s), SpiffeIdError);
        if (id) {
          expect(id.toString()).toBe(s);
          expect(SpiffeId.parse(id.toString()).equals(id)).toBe(true);
        }
        const td = onlyTypedErrors(() => TrustDomain.parse(s), SpiffeIdError);
        if (td) expect(TrustDomain.parse(td.name).equals(td)).toBe(true);
      }),
      3000,
    );
  });
});

describe('fuzz: X.509', () => {
  let ca: TestCA;
  let svid: TestX509SVID;
  beforeAll(async () => {
    ca = await TestCA.create('example.org');
    svid = await ca.createX509SVID('spiffe://example.org/workload');
  });

  it('parseX509SVID on mutated certificates and keys gives an SVID or X509SVIDError', async () => {
    await fuzz(
      fc.asyncProperty(fc.oneof(mutate(svid.chain[0]!), fc.uint8Array({ maxLength: 300 })), fc.boolean(), async (leaf, mutateKey) => {
        const key = mutateKey ? leaf.slice(0, 64) : svid.privateKeyPkcs8;
        await onlyTypedErrorsAsync(() => parseX509SVID([leaf], key), X509SVIDError);
        await onlyTypedErrorsAsync(() => verifyX509SVID([leaf, ...svid.chain.slice(1)], { bundleFor: () => ca.bundle() }), X509SVIDError);
      }),
      400,
    );
  });

  it('DER splitting and PEM decoding give certificates or EncodingError', () => {
    const pem = pemEncodeCertificates([svid.chain[0]!, ca.der()]);
    fuzz(
      fc.property(fc.oneof(mutate(svid.chain[0]!), fc.uint8Array({ maxLength: 200 })), fc.string({ maxLength: 200 }), fc.nat(pem.length), fc.string({ maxLength: 5 }), (der, text, at, ins) => {
        onlyTypedErrors(() => splitDerCertificates(der), EncodingError);
        onlyTypedErrors(() => pemDecode(text), EncodingError);
        onlyTypedErrors(() => pemDecode(pem.slice(0, at) + ins + pem.slice(at), 'CERTIFICATE'), EncodingError);
      }),
      2000,
    );
  });

  it('PEM decoding finds the same blocks as the regular expression it replaced', () => {
    const OLD_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
    const reference = (s: string): string[][] => [...s.matchAll(OLD_RE)].map((m) => [m[1]!, m[2]!, m[3]!]);
    const token = fc.constantFrom('-----BEGIN CERTIFICATE-----\n', '-----BEGIN X-----\r\n', '-----END CERTIFICATE-----', '-----END X-----', '-----END ', '-----BEGIN ', '-----', '-', 'AAAA', 'QQ==', '\n', ' ', ':', 'x', 'CERTIFICATE');
    fuzz(
      fc.property(fc.array(token, { maxLength: 30 }).map((t) => t.join('')), (text) => {
        const expected = reference(text);
        const decoded = onlyTypedErrors(() => pemDecode(text), EncodingError);
        const valid = expected.every(([b, body, e]) => b === e && !body!.includes(':') && /^[A-Za-z0-9+/]*={0,2}$/.test(body!.replace(/\s+/g, '')));
        if (valid) expect(decoded?.map((d) => Buffer.from(d).toString('base64'))).toEqual(expected.map(([, body]) => Buffer.from(body!.replace(/\s+/g, ''), 'base64').toString('base64')));
        else expect(decoded).toBeUndefined();
      }),
      3000,
    );
  });

  it('bundles from DER, PEM and JSON give a bundle or BundleError, and round-trip', () => {
    const bundle = ca.bundle();
    expect(X509Bundle.fromPem(TD, bundle.toPem()).equals(bundle)).toBe(true);
    expect(X509Bundle.fromDer(TD, bundle.toDer()).equals(bundle)).toBe(true);
    const doc = new SpiffeBundle(TD, { x509Authorities: bundle.authorities(), jwtAuthorities: ca.jwtBundle().keys(), sequenceNumber: 3 }).marshal();
    expect(SpiffeBundle.parse(TD, doc).sameAuthorities(SpiffeBundle.parse(TD, SpiffeBundle.parse(TD, doc).marshal()))).toBe(true);
    fuzz(
      fc.property(fc.oneof(jsonishText(), fc.nat(doc.length).chain((at) => fc.string({ maxLength: 4 }).map((s) => doc.slice(0, at) + s + doc.slice(at + 1)))), mutate(bundle.toDer()), (text, der) => {
        onlyTypedErrors(() => SpiffeBundle.parse(TD, text), BundleError);
        onlyTypedErrors(() => JWTBundle.fromJWKS(TD, text), BundleError);
        onlyTypedErrors(() => parseSpiffeBundleMap(text), BundleError);
        onlyTypedErrors(() => X509Bundle.fromDer(TD, der), BundleError);
        onlyTypedErrors(() => X509Bundle.fromPem(TD, text), BundleError);
        onlyTypedErrors(() => parseBundleFile('example.org', '/b.json', text), EmbeddedAuthorityError);
      }),
      1500,
    );
  });
});

describe('fuzz: JWT-SVID', () => {
  const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const claims = fc.record(
    {
      sub: fc.oneof(spiffeish, fc.jsonValue({ maxDepth: 1 })),
      aud: fc.oneof(fc.string({ maxLength: 10 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
      exp: fc.oneof(fc.integer(), fc.double(), fc.jsonValue({ maxDepth: 1 })),
      nbf: fc.oneof(fc.integer(), fc.jsonValue({ maxDepth: 1 })),
      iat: fc.oneof(fc.integer(), fc.jsonValue({ maxDepth: 1 })),
    },
    { requiredKeys: [] },
  );
  const header = fc.record({ alg: fc.oneof(fc.constantFrom('ES256', 'RS256', 'none', 'HS256'), fc.jsonValue({ maxDepth: 1 })), typ: fc.oneof(fc.constantFrom('JWT', 'JOSE'), fc.jsonValue({ maxDepth: 1 })), kid: fc.string({ maxLength: 5 }) }, { requiredKeys: [] });

  it('parses or throws JWTSVIDError for any token text or any header and claims', () => {
    fuzz(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.tuple(header, claims, fc.string({ maxLength: 20 })).map(([h, c, s]) => `${b64(h)}.${b64(c)}.${Buffer.from(s).toString('base64url')}`),
          fc.tuple(jsonishText(), jsonishText()).map(([h, c]) => `${b64(h)}.${b64(c)}.c2ln`),
        ),
        fc.array(fc.string({ maxLength: 10 }), { maxLength: 2 }),
        (token, audience) => {
          const svid = onlyTypedErrors(() => parseInsecureJWTSVID(token, audience, new Date(0)), JWTSVIDError);
          if (svid) expect(svid.id).toBeInstanceOf(SpiffeId);
        },
      ),
      3000,
    );
  });

  it('reads back the subject, audience and expiry of a well-formed token', () => {
    fuzz(
      fc.property(fc.tuple(fc.stringMatching(/^[a-z0-9]{1,10}$/), fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/)), fc.array(fc.string({ minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 2 ** 40 }), ([td, path], aud, exp) => {
        const sub = `spiffe://${td}/${path}`;
        const token = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ sub, aud, exp })}.c2ln`;
        const svid = parseInsecureJWTSVID(token, [aud[0]!], new Date(0));
        expect({ id: svid.id.toString(), audience: svid.audience, expiry: svid.expiry.getTime() }).toEqual({ id: sub, audience: aud, expiry: exp * 1000 });
      }),
      1000,
    );
  });
});
