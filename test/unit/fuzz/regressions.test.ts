/** Bugs the fuzz tests found, each pinned by the smallest input that showed it. */
import { describe, it, expect } from 'vitest';
import { parseStatus } from '../../../src/proc/proc-reader.js';
import { parseX509SVID, pemDecode } from '../../../src/svid/index.js';
import { TestCA } from '../../helpers/test-ca.js';

describe('fuzz regressions', () => {
  it('parseStatus refuses an empty or non-numeric Uid/Gid line instead of returning NaN ids', () => {
    for (const text of ['Gid:\t\nUid:\t', 'Uid:\tx\t1\t1\t1\nGid:\t0\t0\t0\t0', 'Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 two', 'Uid:\t0\t-1\nGid:\t0\t0']) {
      expect(() => parseStatus(text, 7), text).toThrow(expect.objectContaining({ code: 'proc_malformed', message: expect.stringMatching(/^proc: \/proc\/7\/status has a malformed (Uid|Gid|Groups) line/) }));
    }
    expect(parseStatus('Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t\n', 7)).toMatchObject({ realUid: 1, uid: 2, realGid: 5, gid: 6, groups: [] });
  });
});

describe('fuzz regressions: X.509', () => {
  it('parseX509SVID reports a leaf whose EC public key is not a valid point as X509SVIDError, not an OpenSSL error', async () => {
    const ca = await TestCA.create('example.org');
    const svid = await ca.createX509SVID('spiffe://example.org/workload');
    const leaf = svid.chain[0]!.slice();
    // SubjectPublicKeyInfo BIT STRING of a P-256 key: 03 42 00 04 <x> <y>; 0x04 marks an uncompressed point.
    const at = Buffer.from(leaf).indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04]));
    expect(at).toBeGreaterThan(0);
    leaf[at + 3] = 0x00;
    await expect(parseX509SVID([leaf], svid.privateKeyPkcs8)).rejects.toMatchObject({ name: 'X509SVIDError', reason: 'bad_public_key', message: expect.stringMatching(/^x509svid: leaf certificate has an unusable public key/) });
  });
});

describe('regressions: PEM decoding is linear', () => {
  it('gives up at once on many BEGIN lines without an END (the regex rescanned to the end for each: hours for 16 MiB)', () => {
    const text = '-----BEGIN CERTIFICATE-----\nAAAA\n'.repeat(50_000);
    // The old decoder took 95 s for this 1.6 MB text (shared 2-core box), past the test's 30 s
    // timeout; this one well under a millisecond (bench/parse-bounds.mjs measures it).
    expect(pemDecode(text, 'CERTIFICATE')).toEqual([]);
  });
});

/** A CA, an SVID it signed, and a bundle of that CA whose notBefore has a NUL among its digits. */
async function garbledAuthority() {
  const { X509Bundle, TrustDomain } = await import('../../../src/svid/index.js');
  const ca = await TestCA.create('example.org');
  const svid = await ca.createX509SVID('spiffe://example.org/w');
  const root = ca.der().slice();
  // Validity: SEQUENCE (30 1e) of two 13-byte UTCTimes (17 0d "YYMMDDhhmmssZ"); a NUL in the first one's digits.
  const at = Buffer.from(root).indexOf(Buffer.from([0x30, 0x1e, 0x17, 0x0d]));
  expect(at).toBeGreaterThan(0);
  root[at + 6] = 0x00;
  return { ca, svid, garbled: new X509Bundle(TrustDomain.parse('example.org'), [root]) };
}

describe('fuzz regressions: SDK TLS peer verification', () => {
  it('verifyPeerChain refuses bytes that are no DER certificate with X509SVIDError, not the parser\'s own error', async () => {
    const { verifyPeerChain } = await import('../../../src/sdk/tls/index.js');
    const { BundleSet } = await import('../../../src/svid/index.js');
    const ca = await TestCA.create('example.org');
    const svid = await ca.createX509SVID('spiffe://example.org/w');
    const bundles = new BundleSet([ca.bundle()]);
    const pem = new Uint8Array(Buffer.from('-----BEGIN CERTIFICATE-----\n'));
    expect(() => verifyPeerChain([pem], bundles)).toThrow(expect.objectContaining({ name: 'X509SVIDError', reason: 'pem_not_der' }));
    expect(() => verifyPeerChain([svid.chain[0]!, new Uint8Array([1, 2, 3])], bundles)).toThrow(
      expect.objectContaining({ name: 'X509SVIDError', reason: 'bad_der', message: expect.stringMatching(/^x509svid: certificate 1 of the peer's chain is not a DER certificate: /) }),
    );
  });

  it('verifyPeerChain refuses a bundle authority whose notBefore is garbled (@peculiar/x509 read it as 1899, so it looked valid)', async () => {
    const { verifyPeerChain } = await import('../../../src/sdk/tls/index.js');
    const { BundleSet } = await import('../../../src/svid/index.js');
    const { ca, svid, garbled } = await garbledAuthority();
    expect(() => verifyPeerChain([svid.chain[0]!], new BundleSet([garbled]))).toThrow(
      expect.objectContaining({ name: 'X509SVIDError', reason: 'bad_validity', message: expect.stringMatching(/^x509svid: bundle authority certificate has a malformed notBefore time/) }),
    );
    expect(verifyPeerChain([svid.chain[0]!], new BundleSet([ca.bundle()])).id.toString()).toBe('spiffe://example.org/w');
  });
});

describe('regressions: verifyX509SVID reads certificate times as strictly as verifyPeerChain', () => {
  it('refuses a bundle authority whose notBefore is garbled (the same 1899 reading, in the shared path builder)', async () => {
    const { verifyX509SVID, BundleSet } = await import('../../../src/svid/index.js');
    const { ca, svid, garbled } = await garbledAuthority();
    await expect(verifyX509SVID([svid.chain[0]!], new BundleSet([garbled]))).rejects.toMatchObject({
      name: 'X509SVIDError',
      reason: 'bad_validity',
      message: expect.stringMatching(/^x509svid: bundle authority certificate has a malformed notBefore time/),
    });
    expect((await verifyX509SVID([svid.chain[0]!], new BundleSet([ca.bundle()]))).id.toString()).toBe('spiffe://example.org/w');
  });
});
