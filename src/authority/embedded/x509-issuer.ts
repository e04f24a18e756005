import type { RegistrationEntry, SignedX509SVID } from '../types.js';
import { BACKDATE_MS, randomSerialHex, type CAGeneration } from './ca.js';
import { EmbeddedAuthorityError } from './errors.js';
import {
  KeyUsageBit,
  authorityKeyIdExt,
  basicConstraintsExt,
  checkCsr,
  encodeName,
  extKeyUsageServerClientExt,
  keyIdentifier,
  keyUsageExt,
  signCertificate,
  subjectAltNameExt,
  subjectKeyIdExt,
} from '../../crypto/x509-der.js';

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
  const spki = csrPublicKey(o.csrDer);
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
  const firstDns = o.entry.dnsNames[0];
  const subject = encodeName([
    ['C', ['US']],
    ['O', ['SPIRE']],
    ['CN', firstDns === undefined ? [] : [firstDns]],
  ]);
  const serial = randomSerialHex();
  const der = signCertificate(
    {
      serialHex: serial,
      subject,
      issuer: o.ca.subjectDer,
      notBefore,
      notAfter,
      spki,
      extensions: [
        keyUsageExt([KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment, KeyUsageBit.keyAgreement]),
        extKeyUsageServerClientExt(),
        basicConstraintsExt(false),
        subjectKeyIdExt(keyIdentifier(spki)),
        authorityKeyIdExt(Buffer.from(o.ca.subjectKeyId, 'hex')),
        subjectAltNameExt([o.entry.spiffeId], o.entry.dnsNames),
      ],
    },
    o.ca.signingKey,
  );
  return { chain: [der], serial: BigInt('0x' + serial).toString(), notBefore, notAfter };
}

/** The CSR's SubjectPublicKeyInfo, once its signature shows the workload holds the key. */
function csrPublicKey(der: Uint8Array): Uint8Array {
  const c = checkCsr(der);
  if (c.ok) return c.spki;
  if (c.problem === 'malformed') throw new EmbeddedAuthorityError('csr_invalid', 'x509svid: the CSR is not a DER PKCS#10 request', { cause: new Error(c.detail) });
  if (c.problem === 'unsupported') throw new EmbeddedAuthorityError('csr_invalid', `x509svid: the CSR signature cannot be checked (${c.detail})`);
  throw new EmbeddedAuthorityError('csr_invalid', 'x509svid: the CSR signature is invalid; the workload must sign it with the key it requests a certificate for');
}

function floorSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
