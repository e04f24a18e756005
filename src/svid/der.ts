import { EncodingError } from './errors.js';

const SEQUENCE_TAG = 0x30;

/**
 * Returns the end offset of the DER SEQUENCE starting at `off`. Only definite lengths
 * are legal in DER, so indefinite form (0x80) is rejected.
 */
function sequenceEnd(buf: Uint8Array, off: number): number {
  if (buf[off] !== SEQUENCE_TAG) {
    throw new EncodingError(
      'not_der',
      `der: expected an ASN.1 SEQUENCE at byte ${off}; the data is not DER (PEM or junk?)`,
    );
  }
  const first = buf[off + 1];
  if (first === undefined) throw new EncodingError('truncated', 'der: truncated length');
  let len: number;
  let hdr: number;
  if (first < 0x80) {
    len = first;
    hdr = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 4) {
      throw new EncodingError('bad_length', `der: unsupported length encoding at byte ${off}`);
    }
    len = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[off + 2 + i];
      if (b === undefined) throw new EncodingError('truncated', 'der: truncated length');
      len = len * 256 + b;
    }
    hdr = 2 + n;
  }
  const end = off + hdr + len;
  if (end > buf.length) {
    throw new EncodingError(
      'truncated',
      `der: element at byte ${off} claims ${len} bytes but only ${buf.length - off - hdr} remain`,
    );
  }
  return end;
}

function looksLikePem(buf: Uint8Array): boolean {
  const head = Buffer.from(buf.subarray(0, 64)).toString('latin1').trimStart();
  return head.startsWith('-----BEGIN');
}

/** Splits concatenated DER certificates (the Workload API encoding). Rejects PEM and trailing junk. */
export function splitDerCertificates(concat: Uint8Array): Uint8Array[] {
  if (looksLikePem(concat)) {
    throw new EncodingError('pem_not_der', 'der: got PEM where DER is required; decode the PEM first');
  }
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < concat.length) {
    const end = sequenceEnd(concat, off);
    out.push(concat.slice(off, end));
    off = end;
  }
  return out;
}

/** Checks `der` is exactly one DER SEQUENCE (no trailing bytes, not PEM). */
export function assertSingleDer(der: Uint8Array): void {
  if (der.length === 0) throw new EncodingError('empty', 'der: empty input');
  if (looksLikePem(der)) {
    throw new EncodingError('pem_not_der', 'der: got PEM where DER is required; decode the PEM first');
  }
  if (sequenceEnd(der, 0) !== der.length) {
    throw new EncodingError('trailing_data', 'der: trailing data after the DER element');
  }
}

export function concatDer(certs: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(certs.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))));
}

function pemBlock(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function pemEncodeCertificates(certs: readonly Uint8Array[]): string {
  return certs.map((c) => pemBlock('CERTIFICATE', c)).join('');
}

export function pemEncodePrivateKey(pkcs8Der: Uint8Array): string {
  return pemBlock('PRIVATE KEY', pkcs8Der);
}

const BEGIN_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n/y;
const END_RE = /-----END ([A-Z0-9 ]+)-----/y;

/** The blocks of `s` as [begin label, body, end label]: what /BEGIN...END/g would match, found with indexOf in linear time. */
function* pemBlocks(s: string): Generator<[string, string, string]> {
  // A global regex with a lazy body rescans to the end of the text for every BEGIN without an
  // END: quadratic, minutes for a bundle file of a few MiB.
  let from = 0;
  for (;;) {
    const b = s.indexOf('-----BEGIN ', from);
    if (b < 0) return;
    BEGIN_RE.lastIndex = b;
    const begin = BEGIN_RE.exec(s);
    if (!begin) {
      from = b + 1;
      continue;
    }
    const bodyStart = BEGIN_RE.lastIndex;
    let e = s.indexOf('-----END ', bodyStart);
    let end: RegExpExecArray | null = null;
    while (e >= 0) {
      END_RE.lastIndex = e;
      end = END_RE.exec(s);
      if (end) break;
      e = s.indexOf('-----END ', e + 1);
    }
    // No END after this BEGIN means none after any later BEGIN either.
    if (!end) return;
    yield [begin[1]!, s.slice(bodyStart, e), end[1]!];
    from = END_RE.lastIndex;
  }
}

/**
 * Decodes every PEM block. With `label`, a block with another label is an error
 * (a key inside a certificate file is a mistake worth reporting). Encrypted
 * (header-carrying) blocks are rejected.
 */
export function pemDecode(text: string | Uint8Array, label?: string): Uint8Array[] {
  const s = typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
  const out: Uint8Array[] = [];
  for (const [begin, body, end] of pemBlocks(s)) {
    if (begin !== end) {
      throw new EncodingError('bad_pem', `pem: BEGIN ${begin} does not match END ${end}`);
    }
    if (label !== undefined && begin !== label) {
      throw new EncodingError('bad_pem', `pem: expected block type ${label}; got ${begin}`);
    }
    if (body.includes(':')) {
      throw new EncodingError('bad_pem', `pem: ${begin} block has headers (encrypted?); provide an unencrypted block`);
    }
    const b64 = body.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
      throw new EncodingError('bad_pem', `pem: ${begin} block is not valid base64`);
    }
    out.push(new Uint8Array(Buffer.from(b64, 'base64')));
  }
  return out;
}

/** One DER element at `off`: tag, where its content starts and ends. */
function element(buf: Uint8Array, off: number, end: number): { tag: number; start: number; end: number } {
  const tag = buf[off];
  const first = buf[off + 1];
  if (tag === undefined || first === undefined || off + 2 > end) throw new EncodingError('truncated', `der: truncated element at byte ${off}`);
  let n = first;
  let start = off + 2;
  if (first >= 0x80) {
    const k = first & 0x7f;
    if (k === 0 || k > 4) throw new EncodingError('bad_length', `der: unsupported length encoding at byte ${off}`);
    n = 0;
    for (let i = 0; i < k; i++) n = n * 256 + (buf[start + i] ?? 0);
    start += k;
  }
  if (start + n > end) throw new EncodingError('truncated', `der: element at byte ${off} runs past its container`);
  return { tag, start, end: start + n };
}

function children(buf: Uint8Array, parent: { start: number; end: number }): { tag: number; start: number; end: number }[] {
  const out = [];
  for (let off = parent.start; off < parent.end; ) {
    const e = element(buf, off, parent.end);
    out.push(e);
    off = e.end;
  }
  return out;
}

/** 2.5.29.17, subjectAltName, as its DER OID content bytes. */
const SAN_OID = Buffer.from([0x55, 0x1d, 0x11]);

/**
 * The URI SANs of one DER certificate, read straight from its extensions (no ASN.1 library, so
 * the server-session start path does not load one). The caller parses the certificate with
 * node:crypto first; this only walks the structure that parse accepted.
 */
export function sanURIs(der: Uint8Array): string[] {
  assertSingleDer(der);
  const cert = element(der, 0, der.length);
  const tbs = children(der, cert)[0];
  if (!tbs || tbs.tag !== 0x30) throw new EncodingError('not_der', 'der: certificate without tbsCertificate');
  const exts = children(der, tbs).find((e) => e.tag === 0xa3);
  if (!exts) return [];
  const seq = children(der, exts)[0];
  if (!seq || seq.tag !== 0x30) throw new EncodingError('not_der', 'der: malformed extensions');
  const uris: string[] = [];
  for (const ext of children(der, seq)) {
    const parts = children(der, ext);
    const id = parts[0];
    if (!id || id.tag !== 0x06 || !SAN_OID.equals(der.subarray(id.start, id.end))) continue;
    const value = parts[parts.length - 1];
    if (!value || value.tag !== 0x04) throw new EncodingError('not_der', 'der: malformed subjectAltName');
    const names = children(der, value)[0];
    if (!names || names.tag !== 0x30) throw new EncodingError('not_der', 'der: malformed subjectAltName');
    // GeneralName uniformResourceIdentifier is [6] IA5String, implicitly tagged: 0x86.
    for (const n of children(der, names)) if (n.tag === 0x86) uris.push(Buffer.from(der.subarray(n.start, n.end)).toString('latin1'));
  }
  return uris;
}

function derTime(der: Uint8Array, e: { tag: number; start: number; end: number }): number {
  const s = Buffer.from(der.subarray(e.start, e.end)).toString('latin1');
  // UTCTime YYMMDDHHMMSSZ (years 1950-2049) or GeneralizedTime YYYYMMDDHHMMSSZ, as RFC 5280 requires.
  const m = e.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : e.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) throw new EncodingError('not_der', `der: certificate validity is not an RFC 5280 time: ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  if (e.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/**
 * Serial (lowercase hex, as node:crypto's serialNumber) and validity (epoch ms) of one DER
 * certificate, read from its tbsCertificate without building an X509Certificate (a quarter of a
 * millisecond each, for every SVID of a batch the server returns).
 */
export function certSerialAndValidity(der: Uint8Array): { serial: string; notBefore: number; notAfter: number } {
  assertSingleDer(der);
  const tbs = children(der, element(der, 0, der.length))[0];
  if (!tbs || tbs.tag !== 0x30) throw new EncodingError('not_der', 'der: certificate without tbsCertificate');
  const f = children(der, tbs);
  const i = f[0]?.tag === 0xa0 ? 1 : 0;
  const serial = f[i];
  const validity = f[i + 3];
  if (serial?.tag !== 0x02 || validity?.tag !== 0x30) throw new EncodingError('not_der', 'der: malformed tbsCertificate');
  const [from, to] = children(der, validity);
  if (!from || !to) throw new EncodingError('not_der', 'der: malformed validity');
  let s = serial.start;
  while (s < serial.end - 1 && der[s] === 0) s++;
  return { serial: Buffer.from(der.subarray(s, serial.end)).toString('hex'), notBefore: derTime(der, from), notAfter: derTime(der, to) };
}

/** The dotted form of a DER OBJECT IDENTIFIER's content bytes. */
export function oidString(body: Uint8Array): string {
  const arcs: number[] = [];
  let v = 0;
  for (const b of body) {
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    }
  }
  if (arcs.length === 0 || (body[body.length - 1]! & 0x80) !== 0) throw new EncodingError('not_der', 'der: malformed OBJECT IDENTIFIER');
  const first = arcs[0]!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** 2.5.29.14, subjectKeyIdentifier, as its DER OID content bytes. */
const SKI_OID = Buffer.from([0x55, 0x1d, 0x0e]);

export interface CertFields {
  /** Lowercase hex without leading zero bytes (as certSerialAndValidity). */
  serial: string;
  notBefore: number;
  notAfter: number;
  /** The subject Name, whole DER element (tag and length included): the issuer of what this certificate signs. */
  subject: Uint8Array;
  /** SubjectPublicKeyInfo, whole DER element. */
  spki: Uint8Array;
  /** SubjectKeyIdentifier extension's key id, lowercase hex; undefined without one. */
  subjectKeyId: string | undefined;
}

/**
 * The fields of one DER certificate the embedded CA needs about its own certificate, read from
 * the tbsCertificate without an ASN.1 library. As with sanURIs, parse the certificate with
 * node:crypto first; this only walks the structure.
 */
export function certFields(der: Uint8Array): CertFields {
  const { serial, notBefore, notAfter } = certSerialAndValidity(der);
  const tbs = children(der, element(der, 0, der.length))[0]!;
  const f = children(der, tbs);
  const i = f[0]?.tag === 0xa0 ? 1 : 0;
  const subject = f[i + 4];
  const spki = f[i + 5];
  if (subject?.tag !== 0x30 || spki?.tag !== 0x30) throw new EncodingError('not_der', 'der: malformed tbsCertificate');
  let subjectKeyId: string | undefined;
  const exts = f.slice(i + 6).find((e) => e.tag === 0xa3);
  const seq = exts ? children(der, exts)[0] : undefined;
  if (exts && seq?.tag !== 0x30) throw new EncodingError('not_der', 'der: malformed extensions');
  for (const ext of seq ? children(der, seq) : []) {
    const parts = children(der, ext);
    const id = parts[0];
    if (!id || id.tag !== 0x06 || !SKI_OID.equals(der.subarray(id.start, id.end))) continue;
    const value = parts[parts.length - 1];
    const keyId = value?.tag === 0x04 ? children(der, value)[0] : undefined;
    if (keyId?.tag !== 0x04) throw new EncodingError('not_der', 'der: malformed subjectKeyIdentifier');
    subjectKeyId = Buffer.from(der.subarray(keyId.start, keyId.end)).toString('hex');
  }
  const whole = (e: { start: number; end: number }, off: number): Uint8Array => der.slice(off, e.end);
  return { serial, notBefore, notAfter, subject: whole(subject, headerStart(der, tbs, i + 4)), spki: whole(spki, headerStart(der, tbs, i + 5)), subjectKeyId };
}

/** Offset of the `index`th child of `parent` (its tag byte). */
function headerStart(der: Uint8Array, parent: { start: number; end: number }, index: number): number {
  let off = parent.start;
  for (let k = 0; k < index; k++) off = element(der, off, parent.end).end;
  return off;
}

/** The subjectPublicKey BIT STRING's content after its unused-bits octet: what a SubjectKeyIdentifier hashes (RFC 5280 4.2.1.2 method 1). */
export function spkiPublicKeyBits(spki: Uint8Array): Uint8Array {
  const top = element(spki, 0, spki.length);
  const [alg, bits] = children(spki, top);
  if (top.tag !== 0x30 || top.end !== spki.length || alg?.tag !== 0x30 || bits?.tag !== 0x03 || bits.end === bits.start) {
    throw new EncodingError('not_der', 'der: malformed SubjectPublicKeyInfo');
  }
  return spki.subarray(bits.start + 1, bits.end);
}

export interface CsrParts {
  /** certificationRequestInfo, whole DER element: the signed bytes. */
  info: Uint8Array;
  spki: Uint8Array;
  /** Dotted OID of the signature algorithm. */
  signatureAlgorithm: string;
  /** Whether the AlgorithmIdentifier carries parameters other than NULL (none of the accepted algorithms do). */
  signatureParams: boolean;
  signature: Uint8Array;
}

/** The parts of a DER PKCS#10 CertificationRequest (RFC 2986) needed to check its signature and take its key. */
export function csrParts(der: Uint8Array): CsrParts {
  assertSingleDer(der);
  const top = element(der, 0, der.length);
  const [info, alg, sig, ...rest] = children(der, top);
  if (info?.tag !== 0x30 || alg?.tag !== 0x30 || sig?.tag !== 0x03 || rest.length > 0) throw new EncodingError('not_der', 'der: not a PKCS#10 CertificationRequest');
  const fields = children(der, info);
  const [version, subject, spki, attrs, ...more] = fields;
  if (version?.tag !== 0x02 || subject?.tag !== 0x30 || spki?.tag !== 0x30 || attrs?.tag !== 0xa0 || more.length > 0) {
    throw new EncodingError('not_der', 'der: malformed certificationRequestInfo');
  }
  const [algId, params, ...extra] = children(der, alg);
  if (algId?.tag !== 0x06 || extra.length > 0) throw new EncodingError('not_der', 'der: malformed signature AlgorithmIdentifier');
  if (sig.end === sig.start || der[sig.start] !== 0) throw new EncodingError('not_der', 'der: malformed signature BIT STRING');
  const spkiStart = headerStart(der, info, 2);
  return {
    info: der.slice(headerStart(der, top, 0), info.end),
    spki: der.slice(spkiStart, spki.end),
    signatureAlgorithm: oidString(der.subarray(algId.start, algId.end)),
    signatureParams: params !== undefined && !(params.tag === 0x05 && params.end === params.start),
    signature: der.slice(sig.start + 1, sig.end),
  };
}
