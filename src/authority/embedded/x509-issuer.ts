import { x509 } from '../../svid/x509-lib.js';
import type { RegistrationEntry, SignedX509SVID } from '../types.js';
import { BACKDATE_MS, randomSerialHex, type CAGeneration } from './ca.js';
import { EmbeddedAuthorityError } from './errors.js';
import { crypto, signingAlgorithm } from '../../crypto/keys.js';

export interface IssueX509Options {
  ca: CAGeneration;
  entry: RegistrationEntry;
  csrDer: Uint8Array;
  now: number;
  defaultTtlMs: number;
}

/**
 * Sign a workload X.509-SVID with the profile SPIRE's credential builder uses. Only the
 * public key is taken from the CSR; its subject and SANs are ignored because the entry,
 * not the workload, decides the identity.
 */
export async function issueX509SVID(o: IssueX509Options): Promise<SignedX509SVID> {
  const publicKey = await csrPublicKey(o.csrDer);
  const ttlMs = o.entry.x509SvidTtl > 0 ? o.entry.x509SvidTtl * 1000 : o.defaultTtlMs;
  // X.509 times have second precision; truncate here so the returned times match the cert.
  // Never before the CA's own notBefore: a chain is only as valid as its shortest link.
  const notBefore = Math.max(floorSecond(o.now - BACKDATE_MS), o.ca.notBefore);
  const notAfter = Math.min(floorSecond(o.now + ttlMs), o.ca.notAfter);
  if (notAfter <= o.now || o.ca.notBefore > o.now) {
    throw new EmbeddedAuthorityError(
      'ca_not_valid',
      `x509svid: the embedded CA is valid from ${new Date(o.ca.notBefore).toISOString()} to ${new Date(o.ca.notAfter).toISOString()}, not now (${new Date(o.now).toISOString()}); it must be rotated first`,
    );
  }
  const subject: x509.JsonName = [{ C: ['US'] }, { O: ['SPIRE'] }];
  const firstDns = o.entry.dnsNames[0];
  if (firstDns !== undefined) subject.push({ CN: [firstDns] });
  const serial = randomSerialHex();
  const names: x509.JsonGeneralName[] = [
    { type: 'url', value: o.entry.spiffeId },
    ...o.entry.dnsNames.map((d): x509.JsonGeneralName => ({ type: 'dns', value: d })),
  ];
  const KU = x509.KeyUsageFlags;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial,
      subject,
      issuer: o.ca.certificate.subjectName,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey,
      signingKey: o.ca.keys.privateKey,
      signingAlgorithm: signingAlgorithm(o.ca.keyType),
      extensions: [
        new x509.KeyUsagesExtension(KU.digitalSignature | KU.keyEncipherment | KU.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
        new x509.AuthorityKeyIdentifierExtension(o.ca.subjectKeyId),
        new x509.SubjectAlternativeNameExtension(names),
      ],
    },
    crypto,
  );
  return { chain: [new Uint8Array(cert.rawData)], serial: BigInt('0x' + serial).toString(), notBefore, notAfter };
}

async function csrPublicKey(der: Uint8Array): Promise<x509.PublicKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(Buffer.from(der));
  } catch (err) {
    throw new EmbeddedAuthorityError('csr_invalid', 'x509svid: the CSR is not a DER PKCS#10 request', { cause: err });
  }
  let ok = false;
  try {
    ok = await csr.verify(crypto);
  } catch (err) {
    throw new EmbeddedAuthorityError('csr_invalid', `x509svid: the CSR signature cannot be checked (${(err as Error).message})`, { cause: err });
  }
  if (!ok) throw new EmbeddedAuthorityError('csr_invalid', 'x509svid: the CSR signature is invalid; the workload must sign it with the key it requests a certificate for');
  return csr.publicKey;
}

function floorSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
