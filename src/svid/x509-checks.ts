import { X509Certificate } from 'node:crypto';
import { X509SVIDError } from './errors.js';
import { SpiffeId } from './spiffe-id.js';
import { KeyUsage, hasUsage, type CertFacts } from './x509-cert.js';

/** The SPIFFE ID in the one URI SAN of a certificate. */
export function idFromCert(f: CertFacts): SpiffeId {
  if (f.uris.length === 0) {
    throw new X509SVIDError('no_uri_san', 'x509svid: certificate contains no URI SAN; an X509-SVID needs exactly one SPIFFE ID');
  }
  if (f.uris.length > 1) {
    throw new X509SVIDError('multiple_uri_sans', 'x509svid: certificate contains more than one URI SAN; an X509-SVID needs exactly one');
  }
  try {
    return SpiffeId.parse(f.uris[0] as string);
  } catch (cause) {
    throw new X509SVIDError('bad_uri_san', `x509svid: URI SAN ${JSON.stringify(f.uris[0])} is not a valid SPIFFE ID`, { cause });
  }
}

/** Leaf rules of the X509-SVID profile (as go-spiffe applies them on parse). Returns the leaf ID. */
export function checkLeaf(f: CertFacts): SpiffeId {
  const id = idFromCert(f);
  if (id.isRoot()) {
    throw new X509SVIDError('leaf_root_path', `x509svid: leaf certificate ID ${id} has no path; leaf SVIDs need a non-root path`);
  }
  if (f.isCA) {
    throw new X509SVIDError('leaf_is_ca', 'x509svid: leaf certificate must not have CA flag set to true');
  }
  if (!hasUsage(f, KeyUsage.digitalSignature)) {
    throw new X509SVIDError('leaf_no_digital_signature', "x509svid: leaf certificate must have 'digitalSignature' set as key usage");
  }
  if (hasUsage(f, KeyUsage.keyCertSign)) {
    throw new X509SVIDError('leaf_key_cert_sign', "x509svid: leaf certificate must not have 'keyCertSign' set as key usage");
  }
  if (hasUsage(f, KeyUsage.cRLSign)) {
    throw new X509SVIDError('leaf_crl_sign', "x509svid: leaf certificate must not have 'cRLSign' set as key usage");
  }
  return id;
}

/** Rules for every certificate after the leaf. */
export function checkSigning(f: CertFacts, index: number): void {
  if (!f.isCA) {
    throw new X509SVIDError('signing_not_ca', `x509svid: signing certificate ${index} must have CA flag set to true`);
  }
  if (!hasUsage(f, KeyUsage.keyCertSign)) {
    throw new X509SVIDError('signing_no_key_cert_sign', `x509svid: signing certificate ${index} must have 'keyCertSign' set as key usage`);
  }
}

/**
 * @peculiar/x509 reads a UTCTime with a non-digit in it (a NUL, a letter) as 1899-11-30 instead of
 * failing, so a certificate whose notBefore is garbled looked valid since 1899 (a bundle authority
 * is not checked against its own signature, so a garbled one got through; found by
 * test/unit/fuzz/sdk-tls.fuzz.test.ts). OpenSSL refuses such a time ("Bad time value"), as it does
 * in a TLS handshake. A time is only trusted when both parsers read it and agree on it (to the
 * second OpenSSL prints). `openssl` is the certificate as node:crypto parsed it, when the caller has it.
 */
export function checkValidity(f: CertFacts, now: Date, role: string, openssl?: X509Certificate): void {
  let theirs: X509Certificate;
  try {
    theirs = openssl ?? new X509Certificate(f.der);
  } catch (cause) {
    throw new X509SVIDError('bad_der', `x509svid: ${role} certificate is not a DER certificate: ${(cause as Error).message}`, { cause });
  }
  const read = (ours: Date, text: string, field: string): Date => {
    const t = new Date(text).getTime();
    if (!Number.isFinite(ours.getTime()) || !Number.isFinite(t) || Math.abs(ours.getTime() - t) >= 1000) {
      throw new X509SVIDError('bad_validity', `x509svid: ${role} certificate has a malformed ${field} time (OpenSSL reads ${JSON.stringify(text)}); the certificate is corrupt`);
    }
    return ours;
  };
  const notBefore = read(f.cert.notBefore, theirs.validFrom, 'notBefore');
  const notAfter = read(f.cert.notAfter, theirs.validTo, 'notAfter');
  if (now.getTime() < notBefore.getTime()) {
    throw new X509SVIDError('not_yet_valid', `x509svid: ${role} certificate is not valid until ${notBefore.toISOString()} (now ${now.toISOString()})`);
  }
  if (now.getTime() > notAfter.getTime()) {
    throw new X509SVIDError('expired', `x509svid: ${role} certificate expired at ${notAfter.toISOString()} (now ${now.toISOString()})`);
  }
}
