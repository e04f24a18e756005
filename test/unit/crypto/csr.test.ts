import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeCsr } from '../../../src/crypto/csr.js';
import { generateKeyAndCsr } from '../../../src/cache/keys.js';
import { makeAgentCSR } from '../../../src/authority/server/attest-agent.js';
import { sanURIs } from '../../../src/svid/der.js';
import { certFacts, x509 } from '../../../src/svid/x509-cert.js';
import { TestCA } from '../../helpers/test-ca.js';

/** Parsed and signature-checked by an independent ASN.1 implementation (@peculiar/x509). */
async function parse(der: Uint8Array): Promise<x509.Pkcs10CertificateRequest> {
  const csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
  expect(await csr.verify()).toBe(true);
  return csr;
}

describe('makeCsr (hand-encoded PKCS#10)', () => {
  it.each([
    ['ec-p256', '1.2.840.10045.4.3.2', 'SHA-256'],
    ['ec-p384', '1.2.840.10045.4.3.3', 'SHA-384'],
    ['rsa-2048', '1.2.840.113549.1.1.11', 'SHA-256'],
  ] as const)('%s: a valid, verifiable CSR carrying the key, subject O=SPIRE and no extensions', async (type, sigOid, hash) => {
    const { pkcs8, csrDer } = await generateKeyAndCsr(type);
    const csr = await parse(csrDer);
    expect(csr.subject).toBe('O=SPIRE');
    expect(csr.extensions).toHaveLength(0);
    expect(csr.signatureAlgorithm).toMatchObject({ hash: { name: hash } });
    expect(Buffer.from(csrDer).includes(Buffer.from(sigOidBytes(sigOid)))).toBe(true);
    // The CSR's key is the public half of the returned private key.
    const { createPrivateKey, createPublicKey } = await import('node:crypto');
    const spki = createPublicKey(createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
    expect(Buffer.from(csr.publicKey.rawData).equals(spki)).toBe(true);
  });

  it('the agent CSR has spire-agent\'s subject C=US, O=SPIRE', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = await parse(await makeAgentCSR(privateKey));
    expect(csr.subject).toBe('C=US, O=SPIRE');
    await expect(makeAgentCSR(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey)).rejects.toThrow(/EC P-256/);
  });

  it('a signature over other bytes does not verify (the signature covers the request info)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = Buffer.from(makeCsr(privateKey, publicKey.export({ type: 'spki', format: 'der' }), [['O', 'SPIRE']]));
    const at = der.indexOf(Buffer.from('SPIRE'));
    der[at] = 'X'.charCodeAt(0);
    expect(await new x509.Pkcs10CertificateRequest(new Uint8Array(der)).verify()).toBe(false);
  });
});

function sigOidBytes(dotted: string): number[] {
  const a = dotted.split('.').map(Number);
  const out = [40 * a[0]! + a[1]!];
  for (const arc of a.slice(2)) {
    const b = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) b.unshift(0x80 | (v & 0x7f));
    out.push(...b);
  }
  return [0x06, out.length, ...out];
}

describe('sanURIs', () => {
  it('reads the URI SANs as the ASN.1 library does, none, one or several, next to DNS names', async () => {
    const ca = await TestCA.create('example.org');
    const cases = [
      await ca.createX509SVID('spiffe://example.org/a'),
      await ca.createX509SVID('spiffe://example.org/b', { extraUris: ['https://x.test/p?q=1,2'], dnsNames: ['b.test'] }),
      await ca.createX509SVID('spiffe://example.org/c', { uris: [] }),
    ];
    for (const svid of cases) {
      const leaf = svid.chain[0]!;
      expect(sanURIs(leaf)).toEqual(certFacts(leaf).uris);
    }
    expect(sanURIs(cases[1]!.chain[0]!)).toEqual(['spiffe://example.org/b', 'https://x.test/p?q=1,2']);
    expect(sanURIs(cases[2]!.chain[0]!)).toEqual([]);
    expect(sanURIs(ca.der())).toEqual(certFacts(ca.der()).uris);
    expect(new X509Certificate(cases[0]!.chain[0]!).subjectAltName).toContain('spiffe://example.org/a');
  });

  it('rejects truncated or trailing bytes instead of reading past them', async () => {
    const ca = await TestCA.create('example.org');
    const leaf = (await ca.createX509SVID('spiffe://example.org/a')).chain[0]!;
    expect(() => sanURIs(leaf.subarray(0, leaf.length - 10))).toThrow();
    expect(() => sanURIs(Buffer.concat([leaf, Buffer.from([0])]))).toThrow();
  });
});
