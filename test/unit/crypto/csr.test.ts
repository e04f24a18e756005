import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeCsr } from '../../../src/crypto/csr.js';
import { generateKeyAndCsr } from '../../../src/cache/keys.js';
import { makeAgentCSR } from '../../../src/authority/server/attest-agent.js';
import { x509 } from '../../../src/svid/x509-cert.js';
import { SoftwareKey } from '../../../src/keymanager/key-entry.js';

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
    const csr = await parse(await makeAgentCSR(new SoftwareKey('agent-svid-A', privateKey)));
    expect(csr.subject).toBe('C=US, O=SPIRE');
    await expect(makeAgentCSR(new SoftwareKey('agent-svid-A', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey))).rejects.toThrow(/EC P-256/);
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

describe('ecKeyDer', () => {
  it.each(['P-256', 'P-384'])('%s: SPKI and PKCS#8 byte for byte as KeyObject.export writes them', async (namedCurve) => {
    const { ecKeyDer } = await import('../../../src/crypto/csr.js');
    for (let i = 0; i < 20; i++) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
      const got = ecKeyDer(privateKey);
      expect(Buffer.from(got.spki).equals(publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
      expect(Buffer.from(got.pkcs8).equals(privateKey.export({ type: 'pkcs8', format: 'der' }))).toBe(true);
    }
  });
});
