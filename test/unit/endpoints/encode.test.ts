/**
 * Workload API wire encodings: concatenated DER for X.509 (bundles that split back into
 * the CA certificates), JWKS JSON for JWT (kid on every key, never private members or
 * `use`), `spiffe://<td>` map keys, and the fingerprints that decide whether a stream
 * update would change anything for the client. Certificates come from TestCA.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TrustBundle } from '../../../src/authority/types.js';
import type { BundleView, X509Identity } from '../../../src/cache/manager.js';
import {
  bundleFingerprint,
  jwks,
  jwtBundlesResponse,
  svidFingerprint,
  x509BundlesResponse,
  x509SvidResponse,
} from '../../../src/endpoints/stream/encode.js';
import { makeEntry } from '../../helpers/entries.js';
import { TestCA } from '../../helpers/test-ca.js';

/** Splits concatenated DER by reading each outer SEQUENCE's length (independent of product code). */
function splitDer(buf: Uint8Array): Buffer[] {
  const b = Buffer.from(buf);
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    expect(b[i]).toBe(0x30);
    let len = b[i + 1]!;
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let j = 0; j < n; j++) len = len * 256 + b[i + 2 + j]!;
      hdr += n;
    }
    out.push(b.subarray(i, i + hdr + len));
    i += hdr + len;
  }
  expect(i).toBe(b.length);
  return out;
}

let own: TestCA;
let ownNext: TestCA;
let partner: TestCA;
let other: TestCA;

function trustBundle(cas: TestCA[], jwtFrom: TestCA = cas[0]!): TrustBundle {
  return {
    trustDomain: cas[0]!.trustDomain.name,
    x509Authorities: cas.map((c) => c.der()),
    jwtAuthorities: [...jwtFrom.jwtBundle().keys()].map(([keyId, publicKey]) => ({ keyId, publicKey, expiresAt: 0 })),
    sequenceNumber: 1,
    refreshHintSeconds: 0,
  };
}

async function identity(ca: TestCA, id: string, hint = ''): Promise<X509Identity> {
  const svid = await ca.createX509SVID(`spiffe://example.org/${id}`);
  const leaf = new X509Certificate(Buffer.from(svid.chain[0]!));
  return {
    entry: makeEntry(id, ['unix:uid:1000'], { hint }),
    chain: svid.chain,
    keyPkcs8: svid.privateKeyPkcs8,
    serial: leaf.serialNumber,
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    rotateAt: Date.parse(leaf.validTo),
  };
}

beforeAll(async () => {
  [own, ownNext, partner, other] = await Promise.all([TestCA.create('example.org'), TestCA.create('example.org'), TestCA.create('partner.org'), TestCA.create('other.org')]);
});

describe('X509SVIDResponse encoding', () => {
  it('carries the chain leaf first, the PKCS#8 key, the hint, and the own bundle as concatenated DER of every CA', async () => {
    const inter = await own.createIntermediate();
    const a = await identity(inter, 'a', 'primary');
    const b = await identity(own, 'b');
    const view: BundleView = { bundle: trustBundle([own, ownNext]), federatedBundles: new Map() };
    const r = x509SvidResponse([a, b], view) as {
      svids: { spiffe_id: string; x509_svid: Buffer; x509_svid_key: Buffer; bundle: Buffer; hint: string }[];
      crl: unknown[];
      federated_bundles: Record<string, Buffer>;
    };
    expect(r.crl).toEqual([]);
    expect(r.federated_bundles).toEqual({});
    expect(r.svids.map((s) => [s.spiffe_id, s.hint])).toEqual([
      ['spiffe://example.org/a', 'primary'],
      ['spiffe://example.org/b', ''],
    ]);
    const chain = splitDer(r.svids[0]!.x509_svid);
    expect(chain.map((c) => Buffer.from(c))).toEqual([Buffer.from(a.chain[0]!), Buffer.from(inter.der())]);
    expect(new X509Certificate(chain[0]!).subjectAltName).toContain('URI:spiffe://example.org/a');
    expect(Buffer.from(r.svids[0]!.x509_svid_key)).toEqual(Buffer.from(a.keyPkcs8));
    for (const s of r.svids) {
      const cas = splitDer(s.bundle);
      expect(cas).toEqual([Buffer.from(own.der()), Buffer.from(ownNext.der())]);
      expect(cas.every((c) => new X509Certificate(c).ca)).toBe(true);
    }
  });

  it('keys federated bundles by spiffe://<trust domain> with concatenated DER values', async () => {
    const view: BundleView = {
      bundle: trustBundle([own]),
      federatedBundles: new Map([
        ['partner.org', trustBundle([partner])],
        ['other.org', trustBundle([other])],
      ]),
    };
    const r = x509SvidResponse([await identity(own, 'a')], view) as { federated_bundles: Record<string, Buffer> };
    expect(Object.keys(r.federated_bundles).sort()).toEqual(['spiffe://other.org', 'spiffe://partner.org']);
    expect(splitDer(r.federated_bundles['spiffe://partner.org']!)).toEqual([Buffer.from(partner.der())]);
    expect(splitDer(r.federated_bundles['spiffe://other.org']!)).toEqual([Buffer.from(other.der())]);
  });

  it('copies DER that lives inside a larger buffer without its neighbours', () => {
    const der = Buffer.from(own.der());
    const pool = Buffer.concat([Buffer.from('junk-before'), der, Buffer.from('junk-after')]);
    const view: BundleView = {
      bundle: { ...trustBundle([own]), x509Authorities: [new Uint8Array(pool.buffer, pool.byteOffset + 11, der.length)] },
      federatedBundles: new Map(),
    };
    const r = x509BundlesResponse(view) as { bundles: Record<string, Buffer> };
    expect(Buffer.from(r.bundles['spiffe://example.org']!)).toEqual(der);
  });
});

describe('X509BundlesResponse and JWTBundlesResponse encoding', () => {
  const view = (): BundleView => ({ bundle: trustBundle([own, ownNext]), federatedBundles: new Map([['partner.org', trustBundle([partner])]]) });

  it('keys the own and federated X.509 bundles by spiffe://<td>, each splitting back into its CAs', () => {
    const r = x509BundlesResponse(view()) as { bundles: Record<string, Buffer>; crl: unknown[] };
    expect(r.crl).toEqual([]);
    expect(Object.keys(r.bundles).sort()).toEqual(['spiffe://example.org', 'spiffe://partner.org']);
    expect(splitDer(r.bundles['spiffe://example.org']!)).toEqual([Buffer.from(own.der()), Buffer.from(ownNext.der())]);
    expect(splitDer(r.bundles['spiffe://partner.org']!)).toEqual([Buffer.from(partner.der())]);
  });

  it('serves JWKS for the own and federated trust domains, each key with its kid', () => {
    const r = jwtBundlesResponse(view()) as { bundles: Record<string, Buffer> };
    expect(Object.keys(r.bundles).sort()).toEqual(['spiffe://example.org', 'spiffe://partner.org']);
    const doc = JSON.parse(Buffer.from(r.bundles['spiffe://partner.org']!).toString('utf8')) as { keys: Record<string, unknown>[] };
    expect(doc.keys.map((k) => k.kid).sort()).toEqual([...partner.jwtBundle().keys().keys()].sort());
    for (const k of doc.keys) expect(typeof k.kty).toBe('string');
  });

  it('gives every JWK its kid and never a private member, use, key_ops, ext or alg', () => {
    const leaky: TrustBundle = {
      ...trustBundle([own]),
      jwtAuthorities: [
        { keyId: 'k1', expiresAt: 0, publicKey: { kty: 'EC', crv: 'P-256', x: 'xx', y: 'yy', d: 'PRIVATE', use: 'sig', alg: 'ES256', key_ops: ['verify'], ext: true, kid: 'stale' } as never },
        { keyId: 'k2', expiresAt: 0, publicKey: { kty: 'RSA', n: 'nn', e: 'AQAB', d: 'D', p: 'P', q: 'Q', dp: 'DP', dq: 'DQ', qi: 'QI', oth: [] } as never },
        { keyId: 'k3', expiresAt: 0, publicKey: { kty: 'oct', k: 'SYMMETRIC' } as never },
      ],
    };
    const doc = JSON.parse(jwks(leaky).toString('utf8')) as { keys: Record<string, unknown>[] };
    expect(doc.keys).toEqual([
      { kty: 'EC', crv: 'P-256', x: 'xx', y: 'yy', kid: 'k1' },
      { kty: 'RSA', n: 'nn', e: 'AQAB', kid: 'k2' },
      { kty: 'oct', kid: 'k3' },
    ]);
    expect(jwks(leaky).toString()).not.toMatch(/PRIVATE|SYMMETRIC|"use"/);
  });

  it('serves an empty key list, not a missing one, for a bundle without JWT authorities', () => {
    expect(JSON.parse(jwks({ ...trustBundle([own]), jwtAuthorities: [] }).toString())).toEqual({ keys: [] });
  });
});

describe('fingerprints', () => {
  it('are equal for equal content in fresh objects and independent of federated map order', () => {
    const a: BundleView = { bundle: trustBundle([own]), federatedBundles: new Map([['partner.org', trustBundle([partner])], ['other.org', trustBundle([other])]]) };
    const b: BundleView = { bundle: trustBundle([own]), federatedBundles: new Map([['other.org', trustBundle([other])], ['partner.org', trustBundle([partner])]]) };
    for (const kind of ['x509', 'jwt'] as const) expect(bundleFingerprint(a, kind)).toBe(bundleFingerprint(b, kind));
  });

  it('ignore bundle metadata a client never sees', () => {
    const base: BundleView = { bundle: trustBundle([own]), federatedBundles: new Map() };
    const bumped: BundleView = { bundle: { ...trustBundle([own]), sequenceNumber: 99, refreshHintSeconds: 30 }, federatedBundles: new Map() };
    expect(bundleFingerprint(bumped, 'x509')).toBe(bundleFingerprint(base, 'x509'));
  });

  const plain = (): BundleView => ({ bundle: trustBundle([own]), federatedBundles: new Map() });
  const withPartner = (): BundleView => ({ bundle: trustBundle([own]), federatedBundles: new Map([['partner.org', trustBundle([partner])]]) });

  it.each([
    { what: 'a CA is added to the own bundle (rotation)', before: plain, after: (): BundleView => ({ ...plain(), bundle: trustBundle([own, ownNext]) }), kinds: ['x509'] },
    { what: 'the own JWT keys change', before: plain, after: (): BundleView => ({ ...plain(), bundle: trustBundle([own], ownNext) }), kinds: ['jwt'] },
    { what: 'a federated bundle is added', before: plain, after: withPartner, kinds: ['x509', 'jwt'] },
    { what: 'a federated bundle is removed', before: withPartner, after: plain, kinds: ['x509', 'jwt'] },
    {
      what: 'a federated bundle changes content',
      before: withPartner,
      after: (): BundleView => ({ ...plain(), federatedBundles: new Map([['partner.org', { ...trustBundle([other]), trustDomain: 'partner.org' }]]) }),
      kinds: ['x509', 'jwt'],
    },
  ])('change exactly for the affected kind when $what', ({ before, after, kinds }) => {
    for (const kind of ['x509', 'jwt'] as const) {
      const changed = bundleFingerprint(after(), kind) !== bundleFingerprint(before(), kind);
      expect({ kind, changed }).toEqual({ kind, changed: kinds.includes(kind) });
    }
  });

  it('change for SVIDs when a serial, hint, the set of SVIDs or the bundle changes, and not otherwise', async () => {
    const view: BundleView = { bundle: trustBundle([own]), federatedBundles: new Map() };
    const a = await identity(own, 'a', 'h');
    const b = await identity(own, 'b');
    const fp = svidFingerprint([a, b], view);
    expect(svidFingerprint([{ ...a }, { ...b }], { bundle: trustBundle([own]), federatedBundles: new Map() })).toBe(fp);
    const reissued = await identity(own, 'a', 'h');
    expect(svidFingerprint([reissued, b], view)).not.toBe(fp);
    expect(svidFingerprint([{ ...a, entry: { ...a.entry, hint: 'other' } }, b], view)).not.toBe(fp);
    expect(svidFingerprint([a], view)).not.toBe(fp);
    expect(svidFingerprint([a, b], { bundle: trustBundle([own, ownNext]), federatedBundles: new Map() })).not.toBe(fp);
    expect(svidFingerprint([a, b], { bundle: trustBundle([own]), federatedBundles: new Map([['partner.org', trustBundle([partner])]]) })).not.toBe(fp);
  });
});
