import { beforeAll, describe, expect, it } from 'vitest';
import {
  BundleError,
  BundleSet,
  checkBundleRefresh,
  concatDer,
  JWTBundle,
  parseSpiffeBundleMap,
  pemDecode,
  SpiffeBundle,
  splitDerCertificates,
  TrustDomain,
  X509Bundle,
} from '../../../src/svid/index.js';
import { TestCA } from '../../helpers/test-ca.js';

const td = TrustDomain.parse('example.org');
let ca: TestCA;
let ca2: TestCA;
let leafDer: Uint8Array;

beforeAll(async () => {
  ca = await TestCA.create('example.org');
  ca2 = await TestCA.create('example.org');
  leafDer = (await ca.createX509SVID('spiffe://example.org/w')).chain[0] as Uint8Array;
});

function bundleError(fn: () => unknown): BundleError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BundleError);
    expect(e).toMatchObject({ code: 'bundle_invalid' });
    return e as BundleError;
  }
  throw new Error('expected a BundleError');
}

const b64 = (der: Uint8Array) => Buffer.from(der).toString('base64');

describe('DER and PEM', () => {
  it('splits concatenated DER and round-trips through PEM', () => {
    const certs = [ca.der(), ca2.der()];
    const split = splitDerCertificates(concatDer(certs));
    expect(split.map((c) => Buffer.from(c).toString('hex'))).toEqual(certs.map((c) => Buffer.from(c).toString('hex')));
    expect(X509Bundle.fromPem(td, new X509Bundle(td, certs).toPem()).equals(new X509Bundle(td, certs))).toBe(true);
  });

  it.each([
    { name: 'PEM', input: () => new Uint8Array(Buffer.from(new X509Bundle(td, [ca.der()]).toPem())), reason: 'pem_not_der' },
    { name: 'junk', input: () => new Uint8Array([0x04, 0x01, 0x00]), reason: 'not_der' },
    { name: 'a truncated certificate', input: () => ca.der().slice(0, 50), reason: 'truncated' },
  ])('refuses to split $name', ({ input, reason }) => {
    expect(() => splitDerCertificates(input())).toThrow(expect.objectContaining({ reason }));
  });

  it('refuses PEM blocks of another type or with encryption headers', () => {
    expect(() => pemDecode('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'CERTIFICATE')).toThrow(/expected block type CERTIFICATE/);
    expect(() => pemDecode('-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n')).toThrow(/headers/);
  });
});

describe('X509Bundle', () => {
  it('round-trips the Workload API DER encoding', () => {
    const b = new X509Bundle(td, [ca.der(), ca2.der()]);
    expect(X509Bundle.fromDer(td, b.toDer()).equals(b)).toBe(true);
    expect(X509Bundle.fromDer(td, new Uint8Array(0)).isEmpty()).toBe(true);
  });

  it.each([
    { name: 'a PEM file without certificates', fn: () => X509Bundle.fromPem(td, 'nothing here'), reason: 'empty' },
    { name: 'PEM passed as DER', fn: () => X509Bundle.fromDer(td, new Uint8Array(Buffer.from(new X509Bundle(td, [ca.der()]).toPem()))), reason: 'bad_der' },
    { name: 'an authority that is not a certificate', fn: () => new X509Bundle(td, [new Uint8Array([0x30, 0x00])]), reason: 'bad_certificate' },
  ])('rejects $name', ({ fn, reason }) => {
    expect(bundleError(fn).reason).toBe(reason);
  });
});

describe('JWTBundle', () => {
  it('round-trips a plain JWKS with kid and without use', () => {
    const b = ca.jwtBundle();
    const text = Buffer.from(b.toJWKS()).toString();
    const doc = JSON.parse(text) as { keys: Record<string, unknown>[] };
    expect(doc.keys.length).toBe(b.size);
    for (const k of doc.keys) {
      expect(k['kid']).toBeTypeOf('string');
      expect(k).not.toHaveProperty('use');
      expect(k).not.toHaveProperty('d');
    }
    expect(JWTBundle.fromJWKS(td, text).equals(b)).toBe(true);
  });

  it.each([
    { name: 'a JWK without kid', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }] }, reason: 'missing_kid' },
    { name: 'duplicate kids', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', kid: 'k' }, { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', kid: 'k' }] }, reason: 'duplicate_kid' },
    { name: 'a JWK without key parameters', jwks: { keys: [{ kty: 'RSA', kid: 'k' }] }, reason: 'bad_jwk' },
    { name: 'no keys member', jwks: {}, reason: 'missing_keys' },
  ])('rejects a JWKS with $name', ({ jwks, reason }) => {
    expect(bundleError(() => JWTBundle.fromJWKS(td, JSON.stringify(jwks))).reason).toBe(reason);
  });

  it('drops private key members', () => {
    const b = new JWTBundle(td, new Map([['k', { kty: 'EC', crv: 'P-256', x: 'AA', y: 'BB', d: 'secret' }]]));
    expect(b.findKey('k')).toEqual({ kty: 'EC', crv: 'P-256', x: 'AA', y: 'BB' });
  });
});

describe('SpiffeBundle', () => {
  const jwtKey = { kty: 'EC', crv: 'P-256', x: 'AA', y: 'BB' };

  it('parses X.509 and JWT authorities, sequence and refresh hint, and marshals back', () => {
    const json = JSON.stringify({
      keys: [
        { kty: 'EC', use: 'x509-svid', x5c: [b64(ca.der()), 'ignored'] },
        { ...jwtKey, use: 'jwt-svid', kid: 'k1' },
        { kty: 'EC', use: 'wit-svid', kid: 'w' },
        { kty: 'EC', use: 'x509-svid' },
        { kty: 'oct', use: 'jwt-svid', kid: 'sym', k: 'AA' },
        { kty: 'EC', crv: 'P-256', x: 'AA', y: 'BB', kid: 'no-use' },
      ],
      spiffe_sequence: 42,
      spiffe_refresh_hint: 300,
    });
    const b = SpiffeBundle.parse(td, json);
    expect(b.x509Bundle().authorities()).toHaveLength(1);
    expect(b.jwtBundle().size).toBe(1);
    expect(b.jwtBundle().findKey('k1')).toEqual(jwtKey);
    expect(b.sequenceNumber).toBe(42);
    expect(b.refreshHintSeconds).toBe(300);
    const again = SpiffeBundle.parse(td, b.marshal());
    expect(again.sameAuthorities(b)).toBe(true);
    expect(again.sequenceNumber).toBe(42);
    const marshalled = JSON.parse(b.marshal()) as { keys: Record<string, unknown>[] };
    expect(marshalled.keys[0]).toMatchObject({ use: 'x509-svid', kty: 'EC', crv: 'P-256' });
    expect(marshalled.keys[0]).not.toHaveProperty('kid');
  });

  it('accepts an empty key list (all keys revoked)', () => {
    const b = SpiffeBundle.parse(td, '{"keys":[]}');
    expect(b.x509Bundle().isEmpty()).toBe(true);
    expect(b.jwtBundle().size).toBe(0);
  });

  it.each([
    { name: 'no keys member', json: () => ({ spiffe_sequence: 1 }), reason: 'missing_keys' },
    { name: 'an x509-svid entry with kid', json: () => ({ keys: [{ kty: 'EC', use: 'x509-svid', kid: 'k', x5c: [b64(ca.der())] }] }), reason: 'x509_kid_set' },
    { name: 'an x509-svid entry holding a leaf', json: () => ({ keys: [{ kty: 'EC', use: 'x509-svid', x5c: [b64(leafDer)] }] }), reason: 'x509_not_ca' },
    { name: 'an x509-svid entry with junk x5c', json: () => ({ keys: [{ kty: 'EC', use: 'x509-svid', x5c: ['AAAA'] }] }), reason: 'bad_x5c' },
    { name: 'a jwt-svid entry without kid', json: () => ({ keys: [{ ...jwtKey, use: 'jwt-svid' }] }), reason: 'missing_kid' },
    { name: 'a negative sequence', json: () => ({ keys: [], spiffe_sequence: -1 }), reason: 'bad_member' },
  ])('rejects a bundle with $name', ({ json, reason }) => {
    expect(bundleError(() => SpiffeBundle.parse(td, JSON.stringify(json()))).reason).toBe(reason);
  });

  it('rejects a bundle document with a repeated member', () => {
    expect(bundleError(() => SpiffeBundle.parse(td, '{"keys":[],"keys":[]}')).reason).toBe('duplicate_key');
  });

  it('refuses a refresh whose sequence goes backwards or does not change with the contents', () => {
    const v1 = new SpiffeBundle(td, { x509Authorities: [ca.der()], sequenceNumber: 5 });
    const v0 = new SpiffeBundle(td, { x509Authorities: [ca.der()], sequenceNumber: 4 });
    const sameSeqNewContent = new SpiffeBundle(td, { x509Authorities: [ca2.der()], sequenceNumber: 5 });
    const v2 = new SpiffeBundle(td, { x509Authorities: [ca2.der()], sequenceNumber: 6 });
    expect(bundleError(() => checkBundleRefresh(v1, v0)).reason).toBe('sequence_regressed');
    expect(bundleError(() => checkBundleRefresh(v1, sameSeqNewContent)).reason).toBe('sequence_not_bumped');
    expect(() => checkBundleRefresh(v1, v2)).not.toThrow();
    expect(() => checkBundleRefresh(v1, v1)).not.toThrow();
  });
});

describe('SPIFFE bundle map', () => {
  it('parses bundles keyed by trust domain name', () => {
    const m = parseSpiffeBundleMap(JSON.stringify({
      trust_domains: {
        'example.org': { keys: [{ kty: 'EC', use: 'x509-svid', x5c: [b64(ca.der())] }], spiffe_refresh_hint: 10 },
        'other.org': { keys: [] },
      },
    }));
    expect([...m.keys()]).toEqual(['example.org', 'other.org']);
    expect(m.get('example.org')?.refreshHintSeconds).toBeUndefined();
  });

  it('rejects duplicate trust domain keys', () => {
    const text = '{"trust_domains":{"example.org":{"keys":[]},"example.org":{"keys":[]}}}';
    expect(bundleError(() => parseSpiffeBundleMap(text)).reason).toBe('duplicate_key');
  });
});

describe('BundleSet', () => {
  it('finds bundles by trust domain', () => {
    const set = new BundleSet([ca.bundle()]);
    expect(set.bundleFor(TrustDomain.parse('example.org'))?.equals(ca.bundle())).toBe(true);
    expect(set.bundleFor(TrustDomain.parse('other.org'))).toBeUndefined();
  });
});
