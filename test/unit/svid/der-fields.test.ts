import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certSerialAndValidity, sanURIs } from '../../../src/svid/der.js';
import { certFacts } from '../../../src/svid/x509-cert.js';
import { TestCA } from '../../helpers/test-ca.js';

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

describe('certSerialAndValidity', () => {
  it('matches node:crypto on serial and validity, UTCTime and GeneralizedTime alike', async () => {
    const ca = await TestCA.create('example.org');
    const certs = [ca.der()];
    for (let i = 0; i < 40; i++) certs.push((await ca.createX509SVID(`spiffe://example.org/w${i}`)).chain[0]!);
    certs.push((await ca.createX509SVID('spiffe://example.org/far', { notBefore: new Date('2049-12-31T23:59:58Z'), notAfter: new Date('2051-06-01T12:00:01Z') })).chain[0]!);
    certs.push((await ca.createX509SVID('spiffe://example.org/old', { notBefore: new Date('1999-01-02T03:04:05Z'), notAfter: new Date('2031-01-01T00:00:00Z') })).chain[0]!);
    for (const der of certs) {
      const c = new X509Certificate(der);
      const got = certSerialAndValidity(der);
      expect(got).toEqual({ serial: c.serialNumber.toLowerCase(), notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo) });
    }
    expect(certSerialAndValidity(certs.at(-2)!)).toMatchObject({ notBefore: Date.parse('2049-12-31T23:59:58Z'), notAfter: Date.parse('2051-06-01T12:00:01Z') });
    expect(certSerialAndValidity(certs.at(-1)!)).toMatchObject({ notBefore: Date.parse('1999-01-02T03:04:05Z') });
  });

  it('rejects what is not a certificate', async () => {
    const ca = await TestCA.create('example.org');
    const der = ca.der();
    expect(() => certSerialAndValidity(der.subarray(0, der.length - 1))).toThrow();
    expect(() => certSerialAndValidity(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]))).toThrow(/tbsCertificate/);
  });
});
