/**
 * The embedded CA's hand-encoded certificates against what @peculiar/x509 (the library the CA used
 * before) writes for the same input: the tbsCertificate must be byte for byte the same, so CA
 * certificates, workload SVIDs and the files of an existing data_dir keep their profile. OpenSSL reads
 * and verifies them independently. @peculiar/x509 stays a test-only reference here.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, KeyObject, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../../../src/svid/x509-lib.js';
import { createGeneration, randomSerialHex, type CAGeneration, type CASubject } from '../../../src/authority/embedded/ca.js';
import { CAStore } from '../../../src/authority/embedded/ca-store.js';
import { issueX509SVID } from '../../../src/authority/embedded/x509-issuer.js';
import { makeCsr } from '../../../src/crypto/csr.js';
import { exportPrivateKeyPem, generateKeyPair, signingAlgorithm, type KeyType } from '../../../src/crypto/keys.js';
import { checkCsr, encodeTime } from '../../../src/crypto/x509-der.js';
import { certFields } from '../../../src/svid/der.js';
import { crypto, entry, HOUR, workloadCSR } from '../authority/helpers.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const SUBJECT: CASubject = { country: ['US'], organization: ['SPIFFE'], commonName: '' };
const CA_TYPES: KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048'];

/** The tbsCertificate element of a DER certificate (its first child). */
function tbs(der: Uint8Array): Buffer {
  const b = Buffer.from(der);
  const skip = (off: number): [number, number] => {
    const first = b[off + 1]!;
    if (first < 0x80) return [off + 2, off + 2 + first];
    const n = first & 0x7f;
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[off + 2 + i]!;
    return [off + 2 + n, off + 2 + n + len];
  };
  const [start] = skip(0);
  const [, end] = skip(start);
  return b.subarray(start, end);
}

/** The old createGeneration's certificate (@peculiar/x509) for the same key, serial, validity and subject. */
async function oldCaCert(g: CAGeneration, subject: CASubject, td: string): Promise<x509.X509Certificate> {
  const name: x509.JsonName = [];
  if (subject.country.length > 0) name.push({ C: [...subject.country] });
  if (subject.organization.length > 0) name.push({ O: [...subject.organization] });
  if (subject.commonName !== '') name.push({ CN: [subject.commonName] });
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: g.serial,
      subject: name,
      issuer: name,
      notBefore: new Date(g.notBefore),
      notAfter: new Date(g.notAfter),
      publicKey: g.keys.publicKey,
      signingKey: g.keys.privateKey,
      signingAlgorithm: signingAlgorithm(g.keyType),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(g.keys.publicKey, false, crypto),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${td}` }]),
      ],
    },
    crypto,
  );
}

/** The old issueX509SVID's certificate for the same CA, CSR key, serial, validity and entry. */
async function oldSvid(ca: CAGeneration, csrDer: Uint8Array, leaf: x509.X509Certificate, spiffeId: string, dnsNames: string[]): Promise<x509.X509Certificate> {
  const publicKey = new x509.Pkcs10CertificateRequest(Buffer.from(csrDer)).publicKey;
  const subject: x509.JsonName = [{ C: ['US'] }, { O: ['SPIRE'] }];
  if (dnsNames[0] !== undefined) subject.push({ CN: [dnsNames[0]] });
  const KU = x509.KeyUsageFlags;
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: leaf.serialNumber,
      subject,
      issuer: new x509.X509Certificate(Buffer.from(ca.certDer)).subjectName,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      publicKey,
      signingKey: ca.keys.privateKey,
      signingAlgorithm: signingAlgorithm(ca.keyType),
      extensions: [
        new x509.KeyUsagesExtension(KU.digitalSignature | KU.keyEncipherment | KU.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
        new x509.AuthorityKeyIdentifierExtension(ca.subjectKeyId),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }, ...dnsNames.map((d): x509.JsonGeneralName => ({ type: 'dns', value: d }))]),
      ],
    },
    crypto,
  );
}

/** `openssl x509 -text` without the parts that differ between two signatures of the same tbsCertificate. */
function opensslText(dir: string, name: string, der: Uint8Array): string {
  const path = join(dir, name);
  execFileSync('sh', ['-c', `cat > ${path}`], { input: new X509Certificate(der).toString() });
  const text = execFileSync('openssl', ['x509', '-in', path, '-noout', '-text'], { encoding: 'utf8' });
  // Everything after the last "Signature Algorithm" line is the signature value.
  return text.slice(0, text.lastIndexOf('Signature Algorithm'));
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'x509-der-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('embedded CA certificates, hand-encoded', () => {
  it.each(CA_TYPES)('%s CA: the tbsCertificate @peculiar/x509 wrote, read alike by OpenSSL; a workload SVID from it verifies', async (caKeyType) => {
    const g = await createGeneration({ trustDomain: 'example.org', subject: SUBJECT, caKeyType, jwtKeyType: 'ec-p256', now: NOW, ttlMs: 24 * HOUR });
    const ref = await oldCaCert(g, SUBJECT, 'example.org');
    expect(tbs(g.certDer).toString('hex')).toBe(tbs(new Uint8Array(ref.rawData)).toString('hex'));

    // Parsed by the library: the CA profile, self-signed.
    const cert = new x509.X509Certificate(Buffer.from(g.certDer));
    expect(cert.subject).toBe('C=US, O=SPIFFE');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, critical: true });
    expect(cert.getExtension(x509.KeyUsagesExtension)).toMatchObject({ usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, critical: true });
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toBe(g.subjectKeyId);
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => `${n.type}:${n.value}`)).toEqual(['url:spiffe://example.org']);
    expect(cert.serialNumber).toBe(g.serial);
    expect(cert.notBefore.getTime()).toBe(NOW - 10_000);
    expect(cert.notAfter.getTime()).toBe(NOW + 24 * HOUR);
    expect(await cert.verify({ signatureOnly: true }, crypto)).toBe(true);
    expect(g.trustDomain).toBe('example.org');

    const caText = opensslText(dir, `${caKeyType}-ca.pem`, g.certDer);
    expect(caText).toBe(opensslText(dir, `${caKeyType}-ca-ref.pem`, new Uint8Array(ref.rawData)));
    expect(caText).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE\n/);
    expect(caText).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
    expect(caText).toMatch(/URI:spiffe:\/\/example.org\n/);

    // A workload SVID (P-256 CSR, two DNS names, one of them a wildcard: UTF8String CN).
    const csr = await workloadCSR();
    const dns = ['*.web.example.org', 'web.example.org'];
    const svid = await issueX509SVID({ ca: g, entry: entry({ dnsNames: dns }), csrDer: csr.der, now: NOW + 60_000, defaultTtlMs: HOUR });
    const leaf = new x509.X509Certificate(Buffer.from(svid.chain[0]!));
    const refLeaf = await oldSvid(g, csr.der, leaf, 'spiffe://example.org/web', dns);
    expect(tbs(svid.chain[0]!).toString('hex')).toBe(tbs(new Uint8Array(refLeaf.rawData)).toString('hex'));
    expect(await leaf.verify({ publicKey: cert.publicKey, signatureOnly: true }, crypto)).toBe(true);
    const leafText = opensslText(dir, `${caKeyType}-leaf.pem`, svid.chain[0]!);
    expect(leafText).toBe(opensslText(dir, `${caKeyType}-leaf-ref.pem`, new Uint8Array(refLeaf.rawData)));
    expect(leafText).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement\n/);
    expect(leafText).toMatch(/X509v3 Extended Key Usage: \s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    expect(leafText).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE\n/);
    expect(leafText).toMatch(/URI:spiffe:\/\/example.org\/web, DNS:\*.web.example.org, DNS:web.example.org\n/);
    expect(leafText).toContain(`X509v3 Authority Key Identifier: \n                ${g.subjectKeyId.toUpperCase().match(/../g)!.join(':')}`);
    // OpenSSL verifies the chain (as of the issue time: the certificates are from 2025).
    const at = String(Math.floor((NOW + 120_000) / 1000));
    const out = execFileSync('openssl', ['verify', '-x509_strict', '-attime', at, '-CAfile', join(dir, `${caKeyType}-ca.pem`), join(dir, `${caKeyType}-leaf.pem`)], { encoding: 'utf8' });
    expect(out).toMatch(/: OK\n$/);
  });

  it('accepts P-384 and RSA workload keys, checking their CSR signature', async () => {
    const g = await createGeneration({ trustDomain: 'example.org', subject: SUBJECT, caKeyType: 'ec-p256', jwtKeyType: 'ec-p256', now: NOW, ttlMs: 24 * HOUR });
    const ca = new x509.X509Certificate(Buffer.from(g.certDer));
    for (const opts of [{ type: 'ec', namedCurve: 'P-384' }, { type: 'rsa', modulusLength: 2048 }] as const) {
      const { privateKey, publicKey } = opts.type === 'ec' ? generateKeyPairSync('ec', { namedCurve: opts.namedCurve }) : generateKeyPairSync('rsa', { modulusLength: opts.modulusLength });
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const csrDer = makeCsr(privateKey, spki, [['O', 'SPIRE']]);
      const svid = await issueX509SVID({ ca: g, entry: entry(), csrDer, now: NOW, defaultTtlMs: HOUR });
      const leaf = new x509.X509Certificate(Buffer.from(svid.chain[0]!));
      expect(Buffer.from(leaf.publicKey.rawData).equals(spki)).toBe(true);
      expect(await leaf.verify({ publicKey: ca.publicKey, signatureOnly: true }, crypto)).toBe(true);
    }
  });

  it('writes names as @peculiar/x509 did: several values in one RDN, UTF8String where PrintableString cannot hold the value', async () => {
    const subject: CASubject = { country: ['US', 'DE'], organization: ['Ünïcode & Co'], commonName: 'CA *' };
    const g = await createGeneration({ trustDomain: 'example.org', subject, caKeyType: 'ec-p256', jwtKeyType: 'ec-p256', now: NOW, ttlMs: HOUR });
    const ref = await oldCaCert(g, subject, 'example.org');
    expect(tbs(g.certDer).toString('hex')).toBe(tbs(new Uint8Array(ref.rawData)).toString('hex'));
  });

  it('encodes validity as UTCTime before 2050 and GeneralizedTime from 2050 (RFC 5280)', () => {
    expect(encodeTime(Date.UTC(2049, 11, 31, 23, 59, 59, 999)).toString('latin1')).toBe('\x17\x0d491231235959Z');
    expect(encodeTime(Date.UTC(2050, 0, 1, 0, 0, 0)).toString('latin1')).toBe('\x18\x0f20500101000000Z');
    expect(encodeTime(Date.UTC(1950, 0, 1, 0, 0, 0)).toString('latin1')).toBe('\x17\x0d500101000000Z');
  });

  it('a CA valid past 2049 round-trips through the readers and node:crypto', async () => {
    const now = Date.UTC(2049, 11, 31, 12, 0, 0);
    const g = await createGeneration({ trustDomain: 'example.org', subject: SUBJECT, caKeyType: 'ec-p256', jwtKeyType: 'ec-p256', now, ttlMs: 24 * HOUR });
    expect(g.notAfter).toBe(now + 24 * HOUR);
    expect(new Date(new X509Certificate(g.certDer).validTo).getTime()).toBe(now + 24 * HOUR);
    expect(tbs(g.certDer).toString('hex')).toBe(tbs(new Uint8Array((await oldCaCert(g, SUBJECT, 'example.org')).rawData)).toString('hex'));
  });
});

describe('CSR checks (node:crypto)', () => {
  it('refuses a bad signature and malformed bytes with the same errors as before', async () => {
    const g = await createGeneration({ trustDomain: 'example.org', subject: SUBJECT, caKeyType: 'ec-p256', jwtKeyType: 'ec-p256', now: NOW, ttlMs: HOUR });
    const good = (await workloadCSR()).der;
    expect(checkCsr(good).ok).toBe(true);
    const bad = good.slice();
    bad[bad.length - 5] = bad[bad.length - 5]! ^ 0x01;
    const issue = (csrDer: Uint8Array): Promise<unknown> => issueX509SVID({ ca: g, entry: entry(), csrDer, now: NOW, defaultTtlMs: HOUR });
    await expect(issue(bad)).rejects.toMatchObject({ code: 'csr_invalid', message: expect.stringMatching(/CSR signature is invalid/) });
    // The request info changed under an intact signature: the signature no longer covers it.
    const tampered = good.slice();
    const at = Buffer.from(tampered).indexOf(Buffer.from('evil'));
    tampered[at] = 'E'.charCodeAt(0);
    await expect(issue(tampered)).rejects.toMatchObject({ code: 'csr_invalid', message: expect.stringMatching(/CSR signature is invalid/) });
    await expect(issue(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ code: 'csr_invalid', message: 'x509svid: the CSR is not a DER PKCS#10 request' });
    await expect(issue(new Uint8Array([...good, 0]))).rejects.toMatchObject({ code: 'csr_invalid', message: 'x509svid: the CSR is not a DER PKCS#10 request' });
    await expect(issue(good.subarray(0, good.length - 1))).rejects.toMatchObject({ code: 'csr_invalid' });
  });

  it('refuses a key that does not go with the signature algorithm, and Ed25519', async () => {
    // An RSA-signed CSR relabelled as ECDSA-with-SHA256.
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaCsr = Buffer.from(makeCsr(privateKey, publicKey.export({ type: 'spki', format: 'der' }), [['O', 'SPIRE']]));
    const rsaAlg = Buffer.from('06092a864886f70d01010b0500', 'hex');
    const ecAlg = Buffer.from('06082a8648ce3d040302', 'hex');
    const at = rsaCsr.lastIndexOf(rsaAlg);
    const relabelled = Buffer.concat([rsaCsr.subarray(0, at - 2), Buffer.from([0x30, ecAlg.length]), ecAlg, rsaCsr.subarray(at + rsaAlg.length)]);
    // Outer length shrinks by 3 (NULL dropped, OID one byte shorter): fix the top-level header.
    const body = relabelled.subarray(4);
    const fixed = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
    const r = checkCsr(fixed);
    expect(r).toMatchObject({ ok: false, problem: 'unsupported' });

    const ed = generateKeyPairSync('ed25519');
    expect(() => makeCsr(ed.privateKey, ed.publicKey.export({ type: 'spki', format: 'der' }), [])).toThrow(/unsupported key type/);
  });
});

describe('embedded-ca directory written by the @peculiar/x509 code', () => {
  it('loads, signs SVIDs that chain to it, and is written back in the same PEM form', async () => {
    const root = await mkdtemp(join(tmpdir(), 'embedded-ca-old-'));
    try {
      const caDir = join(root, 'embedded-ca');
      await mkdir(caDir, { mode: 0o700 });
      // What the old createGeneration + CAStore.saveGeneration wrote.
      const keys = await generateKeyPair('ec-p256');
      const jwtKeys = await generateKeyPair('ec-p256');
      const name: x509.JsonName = [{ C: ['US'] }, { O: ['SPIFFE'] }];
      const now = Date.now();
      const old = await x509.X509CertificateGenerator.create(
        {
          serialNumber: randomSerialHex(),
          subject: name,
          issuer: name,
          notBefore: new Date(Math.floor((now - 10_000) / 1000) * 1000),
          notAfter: new Date(Math.floor((now + 24 * HOUR) / 1000) * 1000),
          publicKey: keys.publicKey,
          signingKey: keys.privateKey,
          signingAlgorithm: signingAlgorithm('ec-p256'),
          extensions: [
            new x509.BasicConstraintsExtension(true, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
            await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
            new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org' }]),
          ],
        },
        crypto,
      );
      const id = '0123456789abcdef';
      const oldPem = old.toString('pem') + '\n';
      await writeFile(join(caDir, `${id}.ca.crt.pem`), oldPem, { mode: 0o600 });
      await writeFile(join(caDir, `${id}.ca.key.pem`), await exportPrivateKeyPem(keys.privateKey), { mode: 0o600 });
      await writeFile(join(caDir, `${id}.jwt.key.pem`), await exportPrivateKeyPem(jwtKeys.privateKey), { mode: 0o600 });
      await writeFile(join(caDir, `${id}.json`), JSON.stringify({ ca_key_type: 'ec-p256', jwt_key_type: 'ec-p256', jwt_kid: 'kid1' }, null, 2) + '\n');
      await writeFile(join(caDir, 'manifest.json'), JSON.stringify({ version: 1, active: id, next: null, retired: [] }, null, 2) + '\n');

      const state = await new CAStore(root).load();
      const g = state!.active;
      expect(g.serial).toBe(old.serialNumber);
      expect(g.subjectKeyId).toBe(old.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
      expect(g.notBefore).toBe(old.notBefore.getTime());
      expect(g.notAfter).toBe(old.notAfter.getTime());
      expect(g.trustDomain).toBe('example.org');
      expect(Buffer.from(g.subjectDer).equals(Buffer.from(old.subjectName.toArrayBuffer()))).toBe(true);
      expect(Buffer.from(certFields(g.certDer).spki).equals(Buffer.from(old.publicKey.rawData))).toBe(true);

      const svid = await issueX509SVID({ ca: g, entry: entry(), csrDer: (await workloadCSR()).der, now: Date.now(), defaultTtlMs: HOUR });
      const leaf = new X509Certificate(svid.chain[0]!);
      expect(leaf.verify(new X509Certificate(g.certDer).publicKey)).toBe(true);
      expect(leaf.checkIssued(new X509Certificate(g.certDer))).toBe(true);

      // The new writer's PEM for a generation is what the old one wrote for the same certificate.
      const root2 = await mkdtemp(join(tmpdir(), 'embedded-ca-new-'));
      try {
        await new CAStore(root2).save({ active: { ...g, id: 'fedcba9876543210' }, next: undefined, retired: [] });
        expect(await readFile(join(root2, 'embedded-ca', 'fedcba9876543210.ca.crt.pem'), 'utf8')).toBe(oldPem);
      } finally {
        await rm(root2, { recursive: true, force: true });
      }

      // A key that does not match the certificate is still refused.
      await writeFile(join(caDir, `${id}.ca.key.pem`), await exportPrivateKeyPem((await generateKeyPair('ec-p256')).privateKey));
      await expect(new CAStore(root).load()).rejects.toMatchObject({ code: 'ca_store', message: expect.stringMatching(/does not match/) });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('signing keys are node:crypto KeyObjects of the CA key', async () => {
    const g = await createGeneration({ trustDomain: 'example.org', subject: SUBJECT, caKeyType: 'ec-p384', jwtKeyType: 'ec-p256', now: NOW, ttlMs: HOUR });
    expect(g.signingKey).toBeInstanceOf(KeyObject);
    expect(g.signingKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });
});
