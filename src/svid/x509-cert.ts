import { x509 } from './x509-lib.js';
import { webcrypto } from 'node:crypto';
import { assertSingleDer } from './der.js';

export { x509 };

/** The crypto we hand to @peculiar/x509 per call, so its global provider is never touched. */
export const subtleCrypto = webcrypto as unknown as Crypto;

/** Parses exactly one DER certificate. @peculiar/x509 would also accept PEM/hex, so we frame-check first. */
export function parseCertificateDer(der: Uint8Array): x509.X509Certificate {
  assertSingleDer(der);
  return new x509.X509Certificate(new Uint8Array(der));
}

export interface CertFacts {
  cert: x509.X509Certificate;
  der: Uint8Array;
  uris: string[];
  isCA: boolean;
  /** undefined when the certificate has no BasicConstraints extension */
  hasBasicConstraints: boolean;
  pathLength: number | undefined;
  /** undefined when the certificate has no KeyUsage extension */
  keyUsage: number | undefined;
}

export function certFacts(der: Uint8Array): CertFacts {
  const cert = parseCertificateDer(der);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = san ? san.names.items.filter((n) => n.type === 'url').map((n) => n.value) : [];
  return {
    cert,
    der,
    uris,
    isCA: bc?.ca === true,
    hasBasicConstraints: bc !== null && bc !== undefined,
    pathLength: bc?.pathLength,
    keyUsage: ku ? ku.usages : undefined,
  };
}

export const KeyUsage = x509.KeyUsageFlags;

export function hasUsage(f: CertFacts, flag: number): boolean {
  return f.keyUsage !== undefined && (f.keyUsage & flag) !== 0;
}

/** Serial as canonical lowercase hex of the integer (no sign-padding zeros). */
export function serialHex(cert: x509.X509Certificate): string {
  const s = cert.serialNumber.toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}
