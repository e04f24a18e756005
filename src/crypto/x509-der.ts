/**
 * X.509 certificates for the embedded CA, DER-encoded by hand and signed with node:crypto, and the
 * checks of the PKCS#10 requests it signs. The CA writes two fixed profiles (its own self-signed
 * certificate and SPIRE's workload X.509-SVID), so a few DER pieces replace @peculiar/x509 here: that
 * library (with reflect-metadata, tsyringe and the @peculiar/asn1-* packages) costs ~4.6 MiB of RSS
 * and 2.5 MiB of V8 heap to load, for the life of the process.
 *
 * The encodings are those @peculiar/x509 wrote for the same input (test/unit/crypto/x509-der.test.ts
 * compares the tbsCertificate bytes), so CA certificates already on disk and new ones look alike.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { csrParts, spkiPublicKeyBits } from '../svid/der.js';
import { oid, signatureAlgorithm, tlv } from './csr.js';

/** Name attributes the CA writes. */
const ATTR_OID = { C: '2.5.4.6', O: '2.5.4.10', CN: '2.5.4.3' } as const;

/** One RDN per attribute type, holding all of its values, in order (the shape @peculiar/x509 gives a JsonName). */
export type NameSpec = ReadonlyArray<readonly [keyof typeof ATTR_OID, readonly string[]]>;

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** DER Name: PrintableString where the value allows it, UTF8String otherwise. RDNs without values are left out. */
export function encodeName(spec: NameSpec): Uint8Array {
  const rdns = spec
    .filter(([, values]) => values.length > 0)
    .map(([type, values]) =>
      tlv(
        0x31,
        ...values.map((v) => tlv(0x30, oid(ATTR_OID[type]), PRINTABLE.test(v) ? tlv(0x13, Buffer.from(v, 'latin1')) : tlv(0x0c, Buffer.from(v, 'utf8')))),
      ),
    );
  return new Uint8Array(tlv(0x30, ...rdns));
}

/** RFC 5280 4.1.2.5: UTCTime for 1950 through 2049, GeneralizedTime otherwise; seconds, Z. */
export function encodeTime(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError(`x509: year ${year} cannot be encoded`);
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  const s = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(s.slice(2), 'latin1')) : tlv(0x18, Buffer.from(s, 'latin1'));
}

const TRUE = Buffer.from([0x01, 0x01, 0xff]);

function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return tlv(0x30, oid(id), ...(critical ? [TRUE] : []), tlv(0x04, value));
}

/** KeyUsage bits, numbered as RFC 5280 (and @peculiar/x509's KeyUsageFlags: 1 << bit). */
export const KeyUsageBit = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

/** A named-bit BIT STRING in DER: trailing zero bits dropped. */
function namedBits(bits: readonly number[]): Buffer {
  const top = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return tlv(0x03, Buffer.from([7 - (top & 7)]), bytes);
}

/** Critical, as SPIRE writes it. */
export function keyUsageExt(bits: readonly number[]): Buffer {
  return extension('2.5.29.15', true, namedBits(bits));
}

/** Critical; cA omitted when false (DER leaves out a DEFAULT value). */
export function basicConstraintsExt(ca: boolean): Buffer {
  return extension('2.5.29.19', true, tlv(0x30, ...(ca ? [TRUE] : [])));
}

export function extKeyUsageServerClientExt(): Buffer {
  return extension('2.5.29.37', false, tlv(0x30, oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2')));
}

/** SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1, as Go and @peculiar/x509 compute it). */
export function keyIdentifier(spki: Uint8Array): Buffer {
  return createHash('sha1').update(spkiPublicKeyBits(spki)).digest();
}

export function subjectKeyIdExt(keyId: Uint8Array): Buffer {
  return extension('2.5.29.14', false, tlv(0x04, keyId));
}

/** keyIdentifier only ([0] IMPLICIT OCTET STRING). */
export function authorityKeyIdExt(keyId: Uint8Array): Buffer {
  return extension('2.5.29.35', false, tlv(0x30, tlv(0x80, keyId)));
}

/** Not critical (the subject is never empty). URIs first, then DNS names. */
export function subjectAltNameExt(uris: readonly string[], dnsNames: readonly string[]): Buffer {
  return extension(
    '2.5.29.17',
    false,
    tlv(0x30, ...uris.map((u) => tlv(0x86, Buffer.from(u, 'latin1'))), ...dnsNames.map((d) => tlv(0x82, Buffer.from(d, 'latin1')))),
  );
}

export interface CertificateTemplate {
  /** Hex of a positive INTEGER's content (randomSerialHex). */
  serialHex: string;
  /** DER Names. */
  issuer: Uint8Array;
  subject: Uint8Array;
  /** Epoch ms; encoded to the second. */
  notBefore: number;
  notAfter: number;
  /** DER SubjectPublicKeyInfo of the certified key. */
  spki: Uint8Array;
  /** DER Extension elements, in order. */
  extensions: readonly Uint8Array[];
}

/** A v3 certificate signed by `signingKey` (ECDSA with the curve's hash, or RSA PKCS#1 v1.5 SHA-256). */
export function signCertificate(t: CertificateTemplate, signingKey: KeyObject): Uint8Array {
  const alg = signatureAlgorithm(signingKey);
  let serial = Buffer.from(t.serialHex, 'hex');
  if (serial.length === 0 || serial.toString('hex') !== t.serialHex.toLowerCase()) throw new Error(`x509: bad serial ${JSON.stringify(t.serialHex)}`);
  if ((serial[0]! & 0x80) !== 0) serial = Buffer.concat([Buffer.from([0]), serial]);
  const tbs = tlv(
    0x30,
    Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]),
    tlv(0x02, serial),
    alg.id,
    t.issuer,
    tlv(0x30, encodeTime(t.notBefore), encodeTime(t.notAfter)),
    t.subject,
    t.spki,
    tlv(0xa3, tlv(0x30, ...t.extensions)),
  );
  const sig = sign(alg.hash, tbs, alg.dsaEncoding ? { key: signingKey, dsaEncoding: alg.dsaEncoding } : signingKey);
  return new Uint8Array(tlv(0x30, tbs, alg.id, tlv(0x03, Buffer.from([0x00]), sig)));
}

/** Signature algorithms accepted on a CSR: ECDSA and RSA PKCS#1 v1.5 with SHA-2. */
const CSR_ALGORITHMS: Record<string, { hash: string; keyType: 'ec' | 'rsa' }> = {
  '1.2.840.10045.4.3.2': { hash: 'sha256', keyType: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', keyType: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', keyType: 'ec' },
  '1.2.840.113549.1.1.11': { hash: 'sha256', keyType: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', keyType: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', keyType: 'rsa' },
};
const CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

export type CsrCheck =
  | { ok: true; spki: Uint8Array }
  | { ok: false; problem: 'malformed' | 'unsupported' | 'bad_signature'; detail: string };

/** Parses a DER PKCS#10 request and checks it is signed by the key it carries; answers that key's SubjectPublicKeyInfo. */
export function checkCsr(der: Uint8Array): CsrCheck {
  let parts;
  try {
    parts = csrParts(der);
  } catch (err) {
    return { ok: false, problem: 'malformed', detail: (err as Error).message };
  }
  const alg = CSR_ALGORITHMS[parts.signatureAlgorithm];
  if (!alg || parts.signatureParams) return { ok: false, problem: 'unsupported', detail: `unsupported signature algorithm ${parts.signatureAlgorithm}` };
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(parts.spki), format: 'der', type: 'spki' });
  } catch (err) {
    return { ok: false, problem: 'unsupported', detail: `the public key cannot be read: ${(err as Error).message}` };
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== alg.keyType || (alg.keyType === 'ec' && !CURVES.has(curve ?? ''))) {
    return { ok: false, problem: 'unsupported', detail: `a ${String(key.asymmetricKeyType)}${curve ? ` ${curve}` : ''} key does not go with signature algorithm ${parts.signatureAlgorithm}` };
  }
  let ok: boolean;
  try {
    ok = verify(alg.hash, parts.info, alg.keyType === 'ec' ? { key, dsaEncoding: 'der' } : key, parts.signature);
  } catch (err) {
    return { ok: false, problem: 'unsupported', detail: (err as Error).message };
  }
  return ok ? { ok: true, spki: parts.spki } : { ok: false, problem: 'bad_signature', detail: 'signature does not verify' };
}
