/** The SPIFFE checks a TLS peer goes through, on certificates from the test CA (no sockets here). */
import { describe, expect, it } from 'vitest';
import { TestCA } from '../../../helpers/test-ca.js';
import { BundleSet, X509SVIDError, type X509Bundle } from '../../../../src/svid/index.js';
import { x509 } from '../../../../src/svid/x509-lib.js';
import { verifyPeerChain } from '../../../../src/sdk/tls/index.js';

const ca = await TestCA.create('example.org');
const other = await TestCA.create('other.test');
const bundles = new BundleSet<X509Bundle>([ca.bundle(), other.bundle()]);

function failure(chain: Uint8Array[], set = bundles, now?: Date): { code: string; reason: string; message: string } {
  try {
    verifyPeerChain(chain, set, now);
  } catch (e) {
    expect(e).toBeInstanceOf(X509SVIDError);
    const err = e as X509SVIDError;
    return { code: err.code, reason: err.reason, message: err.message };
  }
  throw new Error('verifyPeerChain accepted the chain');
}

describe('verifyPeerChain', () => {
  it('accepts an SVID of the bundle it chains to, and returns its ID and the chain up to the authority', async () => {
    const svid = await ca.createX509SVID('spiffe://example.org/workload');
    const got = verifyPeerChain(svid.chain, bundles);
    expect(got.id.toString()).toBe('spiffe://example.org/workload');
    expect(got.chain.map((c) => Buffer.from(c).toString('hex'))).toEqual([svid.chain[0], ca.der()].map((c) => Buffer.from(c as Uint8Array).toString('hex')));
  });

  it('accepts a chain through an intermediate, with or without the authority appended (as OpenSSL links it)', async () => {
    const inter = await ca.createIntermediate();
    const svid = await inter.createX509SVID('spiffe://example.org/deep');
    expect(verifyPeerChain(svid.chain, bundles).chain).toHaveLength(3);
    expect(verifyPeerChain([...svid.chain, ca.der()], bundles).chain).toHaveLength(3);
  });

  it('refuses an SVID whose chain leads to the authority of another trust domain than its ID names', async () => {
    // other.test's CA signs an ID in example.org: both bundles are trusted, but not for each other's IDs.
    const forged = await other.createX509SVID('spiffe://example.org/workload');
    expect(failure(forged.chain)).toEqual({
      code: 'x509svid_invalid',
      reason: 'unverifiable',
      message: 'x509svid: could not verify the peer\'s certificate spiffe://example.org/workload: no chain to an authority of the bundle of trust domain "example.org"',
    });
  });

  it('refuses an SVID of a trust domain the source holds no bundle for', async () => {
    const stranger = await TestCA.create('stranger.test');
    const svid = await stranger.createX509SVID('spiffe://stranger.test/w');
    expect(failure(svid.chain)).toMatchObject({ reason: 'no_bundle', message: 'x509svid: could not get X509 bundle for trust domain "stranger.test"' });
  });

  it('refuses a certificate without a URI SAN, or with two', async () => {
    const none = await ca.createX509SVID('spiffe://example.org/x', { uris: [], dnsNames: ['example.org'] });
    expect(failure(none.chain)).toMatchObject({ reason: 'no_uri_san' });
    const two = await ca.createX509SVID('spiffe://example.org/x', { extraUris: ['spiffe://example.org/y'] });
    expect(failure(two.chain)).toMatchObject({ reason: 'multiple_uri_sans' });
  });

  it('refuses an expired or not yet valid leaf, and an expired authority', async () => {
    const expired = await ca.createX509SVID('spiffe://example.org/old', { notBefore: new Date(Date.now() - 7200_000), ttlMs: 3600_000 });
    expect(failure(expired.chain)).toMatchObject({ reason: 'expired', message: expect.stringMatching(/^x509svid: leaf certificate expired at /) });
    const early = await ca.createX509SVID('spiffe://example.org/new', { notBefore: new Date(Date.now() + 3600_000) });
    expect(failure(early.chain)).toMatchObject({ reason: 'not_yet_valid' });
    const fine = await ca.createX509SVID('spiffe://example.org/w', { ttlMs: 10 * 24 * 3600_000 });
    expect(failure(fine.chain, bundles, new Date(Date.now() + 2 * 24 * 3600_000))).toMatchObject({
      reason: 'expired',
      message: expect.stringMatching(/^x509svid: bundle authority certificate expired at /),
    });
  });

  it('refuses a CA certificate as the leaf, an ID without a path, and an empty chain', async () => {
    const caLeaf = await ca.createX509SVID('spiffe://example.org/ca', { isCA: true, keyUsages: x509.KeyUsageFlags.digitalSignature });
    expect(failure(caLeaf.chain)).toMatchObject({ reason: 'leaf_is_ca' });
    const rootId = await ca.createX509SVID('spiffe://example.org');
    expect(failure(rootId.chain)).toMatchObject({ reason: 'leaf_root_path' });
    expect(failure([])).toMatchObject({ reason: 'empty_chain', message: 'x509svid: the peer presented no certificate' });
  });

  it('refuses an intermediate that is not a CA', async () => {
    const notCA = await ca.createIntermediate({ isCA: false });
    const svid = await notCA.createX509SVID('spiffe://example.org/w');
    expect(failure(svid.chain)).toMatchObject({ reason: 'signing_not_ca' });
  });

  it('refuses a chain whose presented intermediate did not sign the leaf', async () => {
    const inter = await ca.createIntermediate();
    const svid = await inter.createX509SVID('spiffe://example.org/w');
    const unrelated = await ca.createIntermediate();
    expect(failure([svid.chain[0] as Uint8Array, unrelated.der()])).toMatchObject({ reason: 'unverifiable' });
  });
});
