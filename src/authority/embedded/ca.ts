import { x509 } from '../../svid/x509-lib.js';
import { randomBytes } from 'node:crypto';
import type { KeyType } from '../../config/types.js';
import { crypto, generateKeyPair, publicJwk, signingAlgorithm, type CryptoKeyPair, type JsonWebKey } from '../../crypto/keys.js';

/** SPIRE backdates certificates by this much to tolerate small clock skew between peers. */
export const BACKDATE_MS = 10_000;

export interface CASubject {
  country: readonly string[];
  organization: readonly string[];
  commonName: string;
}

export interface JWTKey {
  readonly kid: string;
  readonly keyType: KeyType;
  readonly keys: CryptoKeyPair;
  readonly publicJwk: JsonWebKey;
}

/**
 * One generation of signing material: an X.509 CA and the JWT key that lives and
 * rotates with it. Both expire at the CA's notAfter.
 */
export interface CAGeneration {
  /** Random hex; names the files of this generation on disk. */
  readonly id: string;
  readonly certificate: x509.X509Certificate;
  readonly certDer: Uint8Array;
  readonly keyType: KeyType;
  readonly keys: CryptoKeyPair;
  /** Hex SubjectKeyIdentifier, used as the AKI of everything this CA signs. */
  readonly subjectKeyId: string;
  /** Epoch ms. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly jwt: JWTKey;
}

export interface CreateGenerationOptions {
  trustDomain: string;
  subject: CASubject;
  caKeyType: KeyType;
  jwtKeyType: KeyType;
  now: number;
  ttlMs: number;
}

/** Random positive serial: 16 random bytes with the sign bit cleared and a non-zero first byte. */
export function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x40;
  return b.toString('hex');
}

export function subjectName(s: CASubject): x509.JsonName {
  const name: x509.JsonName = [];
  if (s.country.length > 0) name.push({ C: [...s.country] });
  if (s.organization.length > 0) name.push({ O: [...s.organization] });
  if (s.commonName !== '') name.push({ CN: [s.commonName] });
  return name;
}

export async function createGeneration(o: CreateGenerationOptions): Promise<CAGeneration> {
  const keys = await generateKeyPair(o.caKeyType);
  const notBefore = o.now - BACKDATE_MS;
  const notAfter = o.now + o.ttlMs;
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto);
  const name = subjectName(o.subject);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialHex(),
      subject: name,
      issuer: name,
      // X.509 has second precision; truncate so the in-memory value equals the reloaded one.
      notBefore: new Date(Math.floor(notBefore / 1000) * 1000),
      notAfter: new Date(Math.floor(notAfter / 1000) * 1000),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: signingAlgorithm(o.caKeyType),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ski,
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${o.trustDomain}` }]),
      ],
    },
    crypto,
  );
  const jwt = await createJWTKey(o.jwtKeyType);
  return fromParts(randomBytes(8).toString('hex'), cert, o.caKeyType, keys, jwt);
}

export async function createJWTKey(keyType: KeyType): Promise<JWTKey> {
  const keys = await generateKeyPair(keyType);
  const jwk = await crypto.subtle.exportKey('jwk', keys.publicKey);
  // 32 random bytes, base64url: the same shape of kid SPIRE generates.
  return { kid: randomBytes(24).toString('base64url'), keyType, keys, publicJwk: publicJwk(jwk) };
}

export function fromParts(id: string, cert: x509.X509Certificate, keyType: KeyType, keys: CryptoKeyPair, jwt: JWTKey): CAGeneration {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw new Error('ca: CA certificate has no SubjectKeyIdentifier');
  return {
    id,
    certificate: cert,
    certDer: new Uint8Array(cert.rawData),
    keyType,
    keys,
    subjectKeyId: ski.keyId,
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    jwt,
  };
}

/** The URI SAN of a CA cert ("spiffe://td"), if any. */
export function caTrustDomain(cert: x509.X509Certificate): string | undefined {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uri = san?.names.items.find((n) => n.type === 'url')?.value;
  return uri?.startsWith('spiffe://') ? uri.slice('spiffe://'.length) : undefined;
}

// --- rotation schedule: pure functions of the generation's validity and `now` ---

/** When to create (and publish) the successor: half of the lifetime. */
export function prepareAt(g: { notBefore: number; notAfter: number }): number {
  return g.notBefore + Math.floor((g.notAfter - g.notBefore) / 2);
}

/** When the successor takes over signing: two thirds of the lifetime. */
export function activateAt(g: { notBefore: number; notAfter: number }): number {
  return g.notBefore + Math.floor(((g.notAfter - g.notBefore) * 2) / 3);
}

export type RotationStep = 'create-active' | 'activate' | 'prepare' | 'discard-next' | 'none';

/** Whether `now` lies in the generation's validity window. */
export function validAt(g: { notBefore: number; notAfter: number }, now: number): boolean {
  return g.notBefore <= now && now < g.notAfter;
}

/**
 * What the rotator should do now. Called repeatedly until it answers 'none'. A
 * generation is only usable while `now` is inside its validity window: after the wall
 * clock has jumped back past its notBefore, what it signs would not verify yet.
 */
export function rotationStep(
  active: { notBefore: number; notAfter: number } | undefined,
  next: { notBefore: number; notAfter: number } | undefined,
  now: number,
): RotationStep {
  // Nothing was signed by a successor yet; one made "in the future" is simply redone.
  if (next && now < next.notBefore) return 'discard-next';
  if (!active || !validAt(active, now)) {
    return next && validAt(next, now) ? 'activate' : 'create-active';
  }
  if (now >= activateAt(active)) return next ? 'activate' : 'prepare';
  if (now >= prepareAt(active) && !next) return 'prepare';
  return 'none';
}

/** The next instant at which rotationStep's answer may change (or a retired CA expires). */
export function nextCheckAt(
  active: { notBefore: number; notAfter: number },
  next: { notBefore: number; notAfter: number } | undefined,
  retired: readonly { notAfter: number }[],
): number {
  const times = [active.notAfter, activateAt(active), ...retired.map((r) => r.notAfter)];
  if (!next) times.push(prepareAt(active));
  return Math.min(...times);
}
