import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import {
  BundleSet,
  concatDer,
  parseX509SVID,
  pemEncodeCertificates,
  pemEncodePrivateKey,
  verifyX509SVID,
  X509Bundle,
  X509SVIDError,
  type X509SVID,
} from '../../../src/svid/index.js';
import { TestCA, type SVIDOptions } from '../../helpers/test-ca.js';

const ID = 'spiffe://example.org/workload';
const KU = { digitalSignature: 1, keyCertSign: 32, cRLSign: 64, keyEncipherment: 4 };
const HOUR = 3600_000;

let ca: TestCA;
let other: TestCA;
let inter: TestCA;
let bundles: BundleSet<X509Bundle>;

beforeAll(async () => {
  ca = await TestCA.create('example.org');
  other = await TestCA.create('other.org');
  inter = await ca.createIntermediate();
  bundles = new BundleSet([ca.bundle(), other.bundle()]);
});

async function expectX509Error(p: Promise<unknown>, reason: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(X509SVIDError);
  expect(err).toMatchObject({ code: 'x509svid_invalid', reason });
  expect((err as Error).message).toMatch(/^x509svid: /);
}

describe('parseX509SVID', () => {
  it('accepts a leaf signed by the root, from concatenated DER or a list', async () => {
    const svid = await ca.createX509SVID(ID);
    const fromConcat: X509SVID = await parseX509SVID(concatDer(svid.chain), svid.privateKeyPkcs8, 'internal');
    expect(fromConcat.id.toString()).toBe(ID);
    expect(fromConcat.hint).toBe('internal');
    expect(fromConcat.certificates).toHaveLength(1);
    expect(fromConcat.serial).toMatch(/^[0-9a-f]+$/);
    expect(fromConcat.notAfter.getTime()).toBeGreaterThan(Date.now());
    const fromList = await parseX509SVID(svid.chain, svid.privateKeyPkcs8);
    expect(fromList.hint).toBe('');
  });

  it('accepts a leaf with an intermediate, DNS SANs and an RSA key', async () => {
    const svid = await inter.createX509SVID(ID, { dnsNames: ['a.example.org'], keyType: 'rsa-2048' });
    const parsed = await parseX509SVID(svid.chain, svid.privateKeyPkcs8);
    expect(parsed.certificates).toHaveLength(2);
  });

  it.each<{ name: string; opts: SVIDOptions; reason: string }>([
    { name: 'zero URI SANs', opts: { uris: [] }, reason: 'no_uri_san' },
    { name: 'two URI SANs', opts: { extraUris: ['spiffe://example.org/second'] }, reason: 'multiple_uri_sans' },
    { name: 'a URI SAN that is not a SPIFFE ID', opts: { uris: ['https://example.org/x'] }, reason: 'bad_uri_san' },
    { name: 'a root-path ID', opts: { uris: ['spiffe://example.org'] }, reason: 'leaf_root_path' },
    { name: 'cA=true', opts: { isCA: true }, reason: 'leaf_is_ca' },
    { name: 'no digitalSignature', opts: { keyUsages: KU.keyEncipherment }, reason: 'leaf_no_digital_signature' },
    { name: 'no KeyUsage extension', opts: { keyUsages: null }, reason: 'leaf_no_digital_signature' },
    { name: 'keyCertSign', opts: { keyUsages: KU.digitalSignature | KU.keyCertSign }, reason: 'leaf_key_cert_sign' },
    { name: 'cRLSign', opts: { keyUsages: KU.digitalSignature | KU.cRLSign }, reason: 'leaf_crl_sign' },
  ])('rejects a leaf with $name', async ({ opts, reason }) => {
    const svid = await ca.createX509SVID(ID, opts);
    await expectX509Error(parseX509SVID(svid.chain, svid.privateKeyPkcs8), reason);
  });

  it.each([
    { name: 'without cA', opts: { isCA: false }, reason: 'signing_not_ca' },
    { name: 'without keyCertSign', opts: { keyUsages: KU.cRLSign }, reason: 'signing_no_key_cert_sign' },
  ])('rejects an intermediate $name', async ({ opts, reason }) => {
    const bad = await ca.createIntermediate(opts);
    const svid = await bad.createX509SVID(ID);
    await expectX509Error(parseX509SVID(svid.chain, svid.privateKeyPkcs8), reason);
  });

  it('rejects a private key that does not match the leaf', async () => {
    const a = await ca.createX509SVID(ID);
    const b = await ca.createX509SVID(ID);
    await expectX509Error(parseX509SVID(a.chain, b.privateKeyPkcs8), 'key_mismatch');
  });

  it('rejects an encrypted PKCS#8 key', async () => {
    const svid = await ca.createX509SVID(ID);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const encrypted = privateKey.export({ format: 'der', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' });
    await expectX509Error(parseX509SVID(svid.chain, new Uint8Array(encrypted)), 'bad_private_key');
  });

  it('rejects a SEC1 (non-PKCS#8) key', async () => {
    const svid = await ca.createX509SVID(ID);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sec1 = privateKey.export({ format: 'der', type: 'sec1' });
    await expectX509Error(parseX509SVID(svid.chain, new Uint8Array(sec1)), 'bad_private_key');
  });

  it('rejects PEM where DER is required, for the chain and for the key', async () => {
    const svid = await ca.createX509SVID(ID);
    const pemChain = new Uint8Array(Buffer.from(pemEncodeCertificates(svid.chain)));
    await expectX509Error(parseX509SVID(pemChain, svid.privateKeyPkcs8), 'pem_not_der');
    await expectX509Error(parseX509SVID([pemChain], svid.privateKeyPkcs8), 'pem_not_der');
    const pemKey = new Uint8Array(Buffer.from(pemEncodePrivateKey(svid.privateKeyPkcs8)));
    await expectX509Error(parseX509SVID(svid.chain, pemKey), 'pem_not_der');
  });

  it('rejects junk and trailing bytes after the chain', async () => {
    const svid = await ca.createX509SVID(ID);
    await expectX509Error(parseX509SVID(new Uint8Array([1, 2, 3]), svid.privateKeyPkcs8), 'bad_der');
    const trailing = concatDer([...svid.chain, new Uint8Array([0x30, 0x05, 0x01])]);
    await expectX509Error(parseX509SVID(trailing, svid.privateKeyPkcs8), 'bad_der');
    await expectX509Error(parseX509SVID(new Uint8Array(0), svid.privateKeyPkcs8), 'empty_chain');
  });
});

describe('verifyX509SVID', () => {
  it('verifies a leaf to its trust domain root and returns the path up to the root', async () => {
    const svid = await inter.createX509SVID(ID);
    const res = await verifyX509SVID(svid.chain, bundles);
    expect(res.id.toString()).toBe(ID);
    expect(res.chain).toHaveLength(3);
    expect(Buffer.from(res.chain[2] as Uint8Array).equals(Buffer.from(ca.der()))).toBe(true);
  });

  it('verifies a leaf signed directly by the root', async () => {
    const svid = await ca.createX509SVID(ID);
    await expect(verifyX509SVID(svid.chain, bundles)).resolves.toMatchObject({ chain: [expect.anything(), expect.anything()] });
  });

  it('rejects a chain signed by another trust domain even when the ID claims this one', async () => {
    const svid = await other.createX509SVID(ID);
    await expectX509Error(verifyX509SVID(svid.chain, bundles), 'unverifiable');
  });

  it('rejects a leaf whose trust domain has no bundle', async () => {
    const svid = await ca.createX509SVID('spiffe://unknown.org/w');
    await expectX509Error(verifyX509SVID(svid.chain, bundles), 'no_bundle');
  });

  it('rejects a chain missing its intermediate', async () => {
    const svid = await inter.createX509SVID(ID);
    await expectX509Error(verifyX509SVID(svid.chain.slice(0, 1), bundles), 'unverifiable');
  });

  it.each([
    { name: 'an expired leaf', opts: { notBefore: new Date(Date.now() - 2 * HOUR), ttlMs: HOUR }, reason: 'expired' },
    { name: 'a not-yet-valid leaf', opts: { notBefore: new Date(Date.now() + HOUR) }, reason: 'not_yet_valid' },
  ])('rejects $name', async ({ opts, reason }) => {
    const svid = await ca.createX509SVID(ID, opts);
    await expectX509Error(verifyX509SVID(svid.chain, bundles), reason);
  });

  it.each([
    { name: 'an expired intermediate', opts: { notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - HOUR) }, reason: 'expired' },
    { name: 'a not-yet-valid intermediate', opts: { notBefore: new Date(Date.now() + HOUR) }, reason: 'not_yet_valid' },
    { name: 'an intermediate without cA', opts: { isCA: false }, reason: 'signing_not_ca' },
    { name: 'an intermediate without keyCertSign', opts: { keyUsages: KU.cRLSign }, reason: 'signing_no_key_cert_sign' },
  ])('rejects a chain through $name', async ({ opts, reason }) => {
    const bad = await ca.createIntermediate(opts);
    const svid = await bad.createX509SVID(ID, { notBefore: new Date(Date.now() - 10_000) });
    await expectX509Error(verifyX509SVID(svid.chain, bundles), reason);
  });

  it('checks validity against the given time', async () => {
    const svid = await ca.createX509SVID(ID, { ttlMs: HOUR });
    await expectX509Error(verifyX509SVID(svid.chain, bundles, new Date(Date.now() + 2 * HOUR)), 'expired');
  });

  it.each<{ name: string; opts: SVIDOptions; reason: string }>([
    { name: 'a leaf with cA=true', opts: { isCA: true }, reason: 'leaf_is_ca' },
    { name: 'a leaf with two URI SANs', opts: { extraUris: ['spiffe://example.org/b'] }, reason: 'multiple_uri_sans' },
    { name: 'a root-path leaf', opts: { uris: ['spiffe://example.org'] }, reason: 'leaf_root_path' },
  ])('applies the leaf checks: rejects $name', async ({ opts, reason }) => {
    const svid = await ca.createX509SVID(ID, opts);
    await expectX509Error(verifyX509SVID(svid.chain, bundles), reason);
  });

  it('does not trust a leaf placed in the bundle as an authority', async () => {
    const svid = await other.createX509SVID('spiffe://example.org/sneaky');
    const poisoned = new BundleSet([new X509Bundle(ca.trustDomain, [svid.chain[0] as Uint8Array])]);
    await expectX509Error(verifyX509SVID(svid.chain, poisoned), 'unverifiable');
  });

  it.each([
    { name: 'cA=false', opts: { isCA: false } },
    { name: 'no keyCertSign', opts: { keyUsages: KU.cRLSign } },
  ])('refuses a bundle authority with $name as the signer of a chain', async ({ opts }) => {
    const notCA = await TestCA.create('example.org', opts);
    const svid = await notCA.createX509SVID(ID);
    await expectX509Error(verifyX509SVID(svid.chain, new BundleSet([notCA.bundle()])), 'root_not_ca');
  });
});
