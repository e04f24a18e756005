/**
 * PKCS#10 certificate signing requests, DER-encoded by hand with node:crypto signing. A CSR the
 * agent sends carries only a subject and a public key (the server takes the key and assigns the
 * identity), so a few fixed DER pieces replace a general ASN.1 library here: this runs once per
 * workload SVID and on the start path, where loading and running @peculiar/x509 cost ~0.1 s.
 */
import { sign, type KeyObject } from 'node:crypto';

/** DER definite length octets. */
export function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER element: tag, length, the concatenated parts. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

/** A DER OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const b: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) b.unshift(0x80 | (v & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, Buffer.from(out));
}

const ATTR: Record<string, string> = { C: '2.5.4.6', O: '2.5.4.10' };

/** Name as Go's crypto/x509 writes a pkix.Name of printable strings: one RDN per attribute, in order. */
function name(rdns: ReadonlyArray<readonly ['C' | 'O', string]>): Buffer {
  return tlv(0x30, ...rdns.map(([k, v]) => tlv(0x31, tlv(0x30, oid(ATTR[k]!), tlv(0x13, Buffer.from(v, 'latin1'))))));
}

/** Signature algorithm for a key (hash, DER AlgorithmIdentifier): ECDSA with the curve's hash (as Go and spire-agent pick it), RSA PKCS#1 v1.5 with SHA-256. */
export function signatureAlgorithm(key: KeyObject): { hash: string; id: Buffer; dsaEncoding?: 'der' } {
  const t = key.asymmetricKeyType;
  if (t === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { hash: 'sha256', id: tlv(0x30, oid('1.2.840.10045.4.3.2')), dsaEncoding: 'der' };
    if (curve === 'secp384r1') return { hash: 'sha384', id: tlv(0x30, oid('1.2.840.10045.4.3.3')), dsaEncoding: 'der' };
    throw new Error(`csr: unsupported EC curve ${String(curve)}`);
  }
  if (t === 'rsa') return { hash: 'sha256', id: tlv(0x30, oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) };
  throw new Error(`csr: unsupported key type ${String(t)}`);
}

/**
 * DER PKCS#10 for `privateKey` (its public half from `publicKeySpki`, DER SubjectPublicKeyInfo):
 * version 0, the subject, no attributes, no extensions (so no URI SAN).
 */
export function makeCsr(privateKey: KeyObject, publicKeySpki: Uint8Array, subject: ReadonlyArray<readonly ['C' | 'O', string]>): Uint8Array {
  const alg = signatureAlgorithm(privateKey);
  const info = csrInfo(publicKeySpki, subject);
  const sig = sign(alg.hash, info, alg.dsaEncoding ? { key: privateKey, dsaEncoding: alg.dsaEncoding } : privateKey);
  return assembleCsr(info, alg.id, sig);
}

/** The CertificationRequestInfo a CSR's signature covers: version 0, the subject, the key, no attributes. */
export function csrInfo(publicKeySpki: Uint8Array, subject: ReadonlyArray<readonly ['C' | 'O', string]>): Buffer {
  return tlv(0x30, Buffer.from([0x02, 0x01, 0x00]), name(subject), publicKeySpki, Buffer.from([0xa0, 0x00]));
}

/** AlgorithmIdentifier of ecdsa-with-SHA256, what a key manager's signature is. */
export const ECDSA_SHA256 = tlv(0x30, oid('1.2.840.10045.4.3.2'));

/** A CSR from its info and a signature made elsewhere (by a key manager that keeps its key). */
export function assembleCsr(info: Uint8Array, algorithmId: Uint8Array, signature: Uint8Array): Uint8Array {
  return new Uint8Array(tlv(0x30, info, algorithmId, tlv(0x03, Buffer.from([0x00]), signature)));
}

/** The elements directly inside the DER SEQUENCE `der` (definite lengths only). */
function sequenceChildren(der: Uint8Array): { tag: number; body: Uint8Array; whole: Uint8Array }[] {
  const read = (off: number): { tag: number; start: number; end: number } => {
    const tag = der[off]!;
    let n = der[off + 1]!;
    let start = off + 2;
    if (n >= 0x80) {
      const k = n & 0x7f;
      n = 0;
      for (let i = 0; i < k; i++) n = n * 256 + der[start + i]!;
      start += k;
    }
    if (start + n > der.length) throw new Error('csr: truncated DER');
    return { tag, start, end: start + n };
  };
  const top = read(0);
  const out = [];
  for (let off = top.start; off < top.end; ) {
    const e = read(off);
    out.push({ tag: e.tag, body: der.subarray(e.start, e.end), whole: der.subarray(off, e.end) });
    off = e.end;
  }
  return out;
}

const EC_PUBLIC_KEY = oid('1.2.840.10045.2.1');

/**
 * An EC key's SubjectPublicKeyInfo and PKCS#8 DER, built from its SEC1 export: byte for byte
 * what KeyObject.export gives for spki and pkcs8, without OpenSSL's encoder lookup, which makes
 * those two exports ~10× slower than sec1 (they were most of the agent's per-SVID CPU).
 */
export function ecKeyDer(privateKey: KeyObject): { spki: Uint8Array; pkcs8: Uint8Array } {
  const sec1 = privateKey.export({ type: 'sec1', format: 'der' });
  const [version, d, params, pub] = sequenceChildren(sec1);
  if (version?.tag !== 0x02 || d?.tag !== 0x04 || params?.tag !== 0xa0 || pub?.tag !== 0xa1) throw new Error('csr: unexpected SEC1 key layout');
  const algorithmId = tlv(0x30, EC_PUBLIC_KEY, params.body);
  return {
    spki: new Uint8Array(tlv(0x30, algorithmId, pub.body)),
    pkcs8: new Uint8Array(tlv(0x30, Buffer.from([0x02, 0x01, 0x00]), algorithmId, tlv(0x04, tlv(0x30, version.whole, d.whole, pub.whole)))),
  };
}
