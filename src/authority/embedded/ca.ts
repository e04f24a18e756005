import { KeyObject, randomBytes } from 'node:crypto';
import type { KeyType } from '../../config/types.js';
import { crypto, generateKeyPair, publicJwk, type CryptoKeyPair, type JsonWebKey } from '../../crypto/keys.js';
import {
  KeyUsageBit,
  basicConstraintsExt,
  encodeName,
  keyIdentifier,
  keyUsageExt,
  signCertificate,
  subjectAltNameExt,
  subjectKeyIdExt,
  type NameSpec,
} from '../../crypto/x509-der.js';
import { certFields, sanURIs } from '../../svid/der.js';

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
 * rotates with it. Both expire at the CA's notAfter. The certificate is kept as DER with
 * the facts read from it (no parsed certificate object: see src/crypto/x509-der.ts).
 */
export interface CAGeneration {
  /** Random hex; names the files of this generation on disk. */
  readonly id: string;
  readonly certDer: Uint8Array;
  /** Lowercase hex, for logs. */
  readonly serial: string;
  /** The certificate's subject Name (DER): the issuer of every SVID it signs. */
  readonly subjectDer: Uint8Array;
  /** From its URI SAN spiffe://<td>; undefined without one. */
  readonly trustDomain: string | undefined;
  readonly keyType: KeyType;
  readonly keys: CryptoKeyPair;
  /** keys.privateKey for node:crypto's sign. */
  readonly signingKey: KeyObject;
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

export function subjectName(s: CASubject): NameSpec {
  return [
    ['C', s.country],
    ['O', s.organization],
    ['CN', s.commonName === '' ? [] : [s.commonName]],
  ];
}

export async function createGeneration(o: CreateGenerationOptions): Promise<CAGeneration> {
  const keys = await generateKeyPair(o.caKeyType);
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
  const name = encodeName(subjectName(o.subject));
  const certDer = signCertificate(
    {
      serialHex: randomSerialHex(),
      subject: name,
      issuer: name,
      // Encoded to the second: the in-memory value read back from the DER equals the reloaded one.
      notBefore: o.now - BACKDATE_MS,
      notAfter: o.now + o.ttlMs,
      spki,
      extensions: [
        basicConstraintsExt(true),
        keyUsageExt([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]),
        subjectKeyIdExt(keyIdentifier(spki)),
        subjectAltNameExt([`spiffe://${o.trustDomain}`], []),
      ],
    },
    KeyObject.from(keys.privateKey),
  );
  const jwt = await createJWTKey(o.jwtKeyType);
  return fromParts(randomBytes(8).toString('hex'), certDer, o.caKeyType, keys, jwt);
}

export async function createJWTKey(keyType: KeyType): Promise<JWTKey> {
  const keys = await generateKeyPair(keyType);
  const jwk = await crypto.subtle.exportKey('jwk', keys.publicKey);
  // 32 random bytes, base64url: the same shape of kid SPIRE generates.
  return { kid: randomBytes(24).toString('base64url'), keyType, keys, publicJwk: publicJwk(jwk) };
}

/** A generation from its DER certificate (which the caller has parsed, e.g. with node:crypto) and keys. */
export function fromParts(id: string, certDer: Uint8Array, keyType: KeyType, keys: CryptoKeyPair, jwt: JWTKey): CAGeneration {
  const f = certFields(certDer);
  if (f.subjectKeyId === undefined) throw new Error('ca: CA certificate has no SubjectKeyIdentifier');
  return {
    id,
    certDer,
    serial: f.serial,
    subjectDer: f.subject,
    trustDomain: caTrustDomain(certDer),
    keyType,
    keys,
    signingKey: KeyObject.from(keys.privateKey),
    subjectKeyId: f.subjectKeyId,
    notBefore: f.notBefore,
    notAfter: f.notAfter,
    jwt,
  };
}

/** The URI SAN of a CA cert ("spiffe://td"), if any. */
export function caTrustDomain(certDer: Uint8Array): string | undefined {
  const uri = sanURIs(certDer)[0];
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
