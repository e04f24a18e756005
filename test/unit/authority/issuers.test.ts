import { x509 } from '../../../src/svid/x509-lib.js';
import { describe, it, expect } from 'vitest';
import { decodeProtectedHeader, decodeJwt, importJWK, jwtVerify } from 'jose';
import { createGeneration } from '../../../src/authority/embedded/ca.js';
import { issueX509SVID } from '../../../src/authority/embedded/x509-issuer.js';
import { issueJWTSVID } from '../../../src/authority/embedded/jwt-issuer.js';
import { parseX509SVID, verifyX509SVID, X509Bundle, TrustDomain, BundleSet } from '../../../src/svid/index.js';
import { crypto, entry, HOUR, workloadCSR } from './helpers.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const subject = { country: ['US'], organization: ['SPIFFE'], commonName: '' };
const gen = (ttlMs = 24 * HOUR) => createGeneration({ trustDomain: 'example.org', subject, caKeyType: 'ec-p256', jwtKeyType: 'ec-p256', now: NOW, ttlMs });

describe('X.509-SVID issuer', () => {
  it('issues the SPIRE workload profile from the CSR public key only', async () => {
    const ca = await gen();
    const csr = await workloadCSR();
    const e = entry({ dnsNames: ['web.example.org', 'alt.example.org'] });
    const svid = await issueX509SVID({ ca, entry: e, csrDer: csr.der, now: NOW, defaultTtlMs: HOUR });
    expect(svid.chain).toHaveLength(1);
    const leaf = new x509.X509Certificate(Buffer.from(svid.chain[0] ?? new Uint8Array()));
    expect(leaf.subject).toBe('C=US, O=SPIRE, CN=web.example.org');
    const sans = leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => `${n.type}:${n.value}`);
    expect(sans).toEqual(['url:spiffe://example.org/web', 'dns:web.example.org', 'dns:alt.example.org']);
    const ku = leaf.getExtension(x509.KeyUsagesExtension);
    const F = x509.KeyUsageFlags;
    expect(ku?.usages).toBe(F.digitalSignature | F.keyEncipherment | F.keyAgreement);
    expect(ku?.critical).toBe(true);
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    expect(leaf.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(ca.subjectKeyId);
    expect(leaf.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]+$/);
    expect(leaf.notBefore.getTime()).toBe(NOW - 10_000);
    expect(leaf.notAfter.getTime()).toBe(NOW + HOUR);
    expect(svid.notAfter).toBe(NOW + HOUR);
    expect(BigInt('0x' + leaf.serialNumber).toString()).toBe(svid.serial);
    expect(await leaf.verify({ publicKey: new x509.X509Certificate(Buffer.from(ca.certDer)).publicKey, signatureOnly: true }, crypto)).toBe(true);

    // The shared SVID parser (go-spiffe's checks) and path validation accept it.
    const keyDer = new Uint8Array(await crypto.subtle.exportKey('pkcs8', csr.keys.privateKey));
    const parsed = await parseX509SVID(svid.chain, keyDer);
    expect(parsed.id.toString()).toBe('spiffe://example.org/web');
    const td = TrustDomain.parse('example.org');
    const bundles = new BundleSet([new X509Bundle(td, [ca.certDer])]);
    await expect(verifyX509SVID(svid.chain, bundles, new Date(NOW))).resolves.toBeDefined();
  });

  it('uses the entry TTL when set and caps it at the CA expiry', async () => {
    const ca = await gen(2 * HOUR);
    const csr = await workloadCSR();
    const short = await issueX509SVID({ ca, entry: entry({ x509SvidTtl: 600 }), csrDer: csr.der, now: NOW, defaultTtlMs: HOUR });
    expect(short.notAfter).toBe(NOW + 600_000);
    const capped = await issueX509SVID({ ca, entry: entry({ x509SvidTtl: 10 * 3600 }), csrDer: csr.der, now: NOW, defaultTtlMs: HOUR });
    expect(capped.notAfter).toBe(ca.notAfter);
  });

  it('has no CN when the entry has no DNS names', async () => {
    const ca = await gen();
    const svid = await issueX509SVID({ ca, entry: entry(), csrDer: (await workloadCSR()).der, now: NOW, defaultTtlMs: HOUR });
    expect(new x509.X509Certificate(Buffer.from(svid.chain[0] ?? new Uint8Array())).subject).toBe('C=US, O=SPIRE');
  });

  it('refuses a CSR whose signature does not verify', async () => {
    const ca = await gen();
    const der = (await workloadCSR()).der.slice();
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
    await expect(issueX509SVID({ ca, entry: entry(), csrDer: der, now: NOW, defaultTtlMs: HOUR })).rejects.toMatchObject({ code: 'csr_invalid' });
  });

  it('refuses bytes that are not a CSR', async () => {
    const ca = await gen();
    await expect(issueX509SVID({ ca, entry: entry(), csrDer: new Uint8Array([1, 2, 3]), now: NOW, defaultTtlMs: HOUR })).rejects.toMatchObject({ code: 'csr_invalid' });
  });
});

describe('JWT-SVID issuer', () => {
  it('signs {alg, kid, typ:"JWT"} with sub, aud array, iat, exp and iss, verifiable with the published key', async () => {
    const ca = await gen();
    const svid = await issueJWTSVID({ key: ca.jwt, entry: entry(), audience: ['svc'], now: NOW, defaultTtlMs: 300_000, notAfter: ca.notAfter, issuer: 'https://oidc.example.org' });
    expect(decodeProtectedHeader(svid.token)).toEqual({ alg: 'ES256', kid: ca.jwt.kid, typ: 'JWT' });
    const claims = decodeJwt(svid.token);
    expect(claims).toEqual({ sub: 'spiffe://example.org/web', aud: ['svc'], iat: NOW / 1000, exp: NOW / 1000 + 300, iss: 'https://oidc.example.org' });
    expect(svid.expiresAt).toBe(NOW + 300_000);
    const key = await importJWK({ ...ca.jwt.publicJwk }, 'ES256');
    await expect(jwtVerify(svid.token, key, { currentDate: new Date(NOW), audience: 'svc' })).resolves.toBeDefined();
  });

  it('adds a jti when the entry asks for it and uses the entry TTL', async () => {
    const ca = await gen();
    const svid = await issueJWTSVID({ key: ca.jwt, entry: entry({ jwtSvidIncludeJti: true, jwtSvidTtl: 60 }), audience: ['a', 'b'], now: NOW, defaultTtlMs: 300_000, notAfter: ca.notAfter, issuer: undefined });
    const claims = decodeJwt(svid.token);
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(claims.iss).toBeUndefined();
    expect(claims.aud).toEqual(['a', 'b']);
    expect(claims.exp).toBe(NOW / 1000 + 60);
  });

  it('signs RS256 with an RSA JWT key', async () => {
    const ca = await createGeneration({ trustDomain: 'example.org', subject, caKeyType: 'ec-p256', jwtKeyType: 'rsa-2048', now: NOW, ttlMs: HOUR * 24 });
    const svid = await issueJWTSVID({ key: ca.jwt, entry: entry(), audience: ['x'], now: NOW, defaultTtlMs: 300_000, notAfter: ca.notAfter, issuer: undefined });
    expect(decodeProtectedHeader(svid.token).alg).toBe('RS256');
  });

  it('refuses an empty audience', async () => {
    const ca = await gen();
    await expect(issueJWTSVID({ key: ca.jwt, entry: entry(), audience: [], now: NOW, defaultTtlMs: 1, notAfter: ca.notAfter, issuer: undefined })).rejects.toMatchObject({ code: 'jwt_audience' });
  });
});
