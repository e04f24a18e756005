import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bundleFromProto, entryFromProto, trustDomainName, type EntryMessage } from '../../../../src/authority/server/convert.js';

const base: EntryMessage = { id: 'e1', spiffe_id: { trust_domain: 'example.org', path: '/w' }, selectors: [{ type: 'unix', value: 'uid:1' }], revision_number: '3', created_at: '1700000000' };

describe('entryFromProto', () => {
  it('maps the fields of the agent output mask, int64 strings included', () => {
    const { entry, storeSvid } = entryFromProto({ ...base, federates_with: ['spiffe://other.org', 'third.org'], hint: 'h', admin: true, store_svid: true });
    expect(entry).toMatchObject({ id: 'e1', spiffeId: 'spiffe://example.org/w', federatesWith: ['other.org', 'third.org'], hint: 'h', admin: true, revisionNumber: 3, createdAt: 1700000000 });
    expect(storeSvid).toBe(true);
  });

  it.each([
    ['no id', { id: '' }, 'missing entry ID'],
    ['no SPIFFE ID', { spiffe_id: null }, 'response missing SPIFFE ID'],
    ['a bad trust domain', { spiffe_id: { trust_domain: 'Example.org', path: '/w' } }, 'invalid SPIFFE ID: bad trust domain "Example.org"'],
    ['a bad path', { spiffe_id: { trust_domain: 'example.org', path: 'w' } }, 'invalid SPIFFE ID: bad path "w"'],
    ['a dot segment', { spiffe_id: { trust_domain: 'example.org', path: '/a/../b' } }, 'invalid SPIFFE ID: bad path "/a/../b"'],
    ['no selectors', { selectors: [] }, 'selector list is empty'],
    ['an empty selector type', { selectors: [{ type: '', value: 'x' }] }, 'missing selector type'],
    ['a selector type with a colon', { selectors: [{ type: 'unix:uid', value: '1' }] }, "selector type contains ':'"],
    ['an empty selector value', { selectors: [{ type: 'unix', value: '' }] }, 'missing selector value'],
    ['a bad federated trust domain', { federates_with: ['spiffe://'] }, 'invalid federated trust domain "spiffe://"'],
  ] as const)('drops an entry with %s, as spire-agent does', (_name, patch, message) => {
    expect(() => entryFromProto({ ...base, ...(patch as Partial<EntryMessage>) })).toThrow(message);
  });
});

describe('bundleFromProto', () => {
  it('turns PKIX JWT keys into JWKs and keeps the tainted flags', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const b = bundleFromProto({
      trust_domain: 'example.org',
      x509_authorities: [{ asn1: Buffer.from([1]) }, { asn1: Buffer.from([2]), tainted: true }],
      jwt_authorities: [{ public_key: der, key_id: 'k1', expires_at: '1800000000', tainted: true }],
      sequence_number: '9',
      refresh_hint: '300',
    });
    expect(b).toMatchObject({ trustDomain: 'example.org', sequenceNumber: 9, refreshHintSeconds: 300 });
    expect(b.x509Authorities).toEqual([new Uint8Array([1]), new Uint8Array([2])]);
    expect(b.taintedX509Authorities).toEqual([new Uint8Array([2])]);
    expect(b.jwtAuthorities[0]).toMatchObject({ keyId: 'k1', expiresAt: 1800000000, tainted: true, publicKey: { kty: 'EC', crv: 'P-256' } });
  });

  it('refuses a bundle whose JWT key cannot be read', () => {
    expect(() => bundleFromProto({ trust_domain: 'example.org', jwt_authorities: [{ public_key: Buffer.from([1, 2]), key_id: 'k' }] })).toThrow();
  });

  it('accepts trust domain names with or without the scheme', () => {
    expect([trustDomainName('example.org'), trustDomainName('spiffe://example.org'), trustDomainName('spiffe://'), trustDomainName('EX')]).toEqual(['example.org', 'example.org', undefined, undefined]);
  });
});
