import { webcrypto } from 'node:crypto';

// lib is ES2022 (no DOM), so the WebCrypto dictionary types come from node:crypto.
// Global CryptoKey (what @peculiar/x509 is typed against), not webcrypto.CryptoKey.
export interface CryptoKeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}
export type JsonWebKey = webcrypto.JsonWebKey;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
type RsaHashedKeyGenParams = webcrypto.RsaHashedKeyGenParams;
type EcKeyImportParams = webcrypto.EcKeyImportParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;
type EcKeyAlgorithm = webcrypto.EcKeyAlgorithm;
type RsaHashedKeyAlgorithm = webcrypto.RsaHashedKeyAlgorithm;
/** Key types as agent.conf names them; config re-exports this. */
export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-4096';

/** WebCrypto, passed explicitly to @peculiar/x509 so nothing global is configured. */
export const crypto = webcrypto as unknown as Crypto;
const subtle = crypto.subtle;

type KeyAlgorithm = EcKeyGenParams | RsaHashedKeyGenParams;
type ImportAlgorithm = EcKeyImportParams | RsaHashedImportParams;

interface KeyTypeInfo {
  gen: KeyAlgorithm;
  import: ImportAlgorithm;
  /** Signature algorithm for X.509 signing with this key. */
  sign: { name: string; hash?: string };
  /** JWS alg for JWT-SVIDs. */
  jwsAlg: 'ES256' | 'ES384' | 'RS256';
}

const RSA_EXP = new Uint8Array([1, 0, 1]);

const INFO: Record<KeyType, KeyTypeInfo> = {
  'ec-p256': {
    gen: { name: 'ECDSA', namedCurve: 'P-256' },
    import: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' },
    jwsAlg: 'ES256',
  },
  'ec-p384': {
    gen: { name: 'ECDSA', namedCurve: 'P-384' },
    import: { name: 'ECDSA', namedCurve: 'P-384' },
    sign: { name: 'ECDSA', hash: 'SHA-384' },
    jwsAlg: 'ES384',
  },
  'rsa-2048': {
    gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: RSA_EXP, hash: 'SHA-256' },
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
    jwsAlg: 'RS256',
  },
  'rsa-4096': {
    gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 4096, publicExponent: RSA_EXP, hash: 'SHA-256' },
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
    jwsAlg: 'RS256',
  },
};

export const KEY_TYPES = Object.keys(INFO) as KeyType[];

export function isKeyType(v: unknown): v is KeyType {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(INFO, v);
}

export function signingAlgorithm(kt: KeyType): { name: string; hash?: string } {
  return INFO[kt].sign;
}

export function jwsAlgorithm(kt: KeyType): 'ES256' | 'ES384' | 'RS256' {
  return INFO[kt].jwsAlg;
}

/** An exportable key pair: keys must round-trip to PKCS#8 for persistence. */
export async function generateKeyPair(kt: KeyType): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(INFO[kt].gen, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await subtle.exportKey('pkcs8', key));
  return toPem('PRIVATE KEY', der);
}

/** Import a PKCS#8 PEM private key and derive its public key (via JWK, dropping private members). */
export async function importKeyPairPem(kt: KeyType, pem: string): Promise<CryptoKeyPair> {
  const der = fromPem('PRIVATE KEY', pem);
  const privateKey = await subtle.importKey('pkcs8', der, INFO[kt].import, true, ['sign']);
  const jwk = await subtle.exportKey('jwk', privateKey);
  const publicKey = await subtle.importKey('jwk', publicJwk(jwk), INFO[kt].import, true, ['verify']);
  return { privateKey, publicKey };
}

/** Only the public members of a JWK. */
export function publicJwk(jwk: JsonWebKey): JsonWebKey {
  if (jwk.kty === 'EC') return { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
  if (jwk.kty === 'RSA') return { kty: 'RSA', n: jwk.n, e: jwk.e };
  throw new Error(`keys: unsupported JWK key type ${String(jwk.kty)}`);
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function fromPem(label: string, pem: string): Uint8Array<ArrayBuffer> {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`);
  const m = re.exec(pem);
  if (!m?.[1]) throw new Error(`keys: no ${label} PEM block found`);
  return new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
}

/** Which KeyType a CryptoKey is (for keys loaded from disk whose type we must infer). */
export function keyTypeOf(key: CryptoKey): KeyType {
  const alg = key.algorithm as EcKeyAlgorithm & RsaHashedKeyAlgorithm;
  if (alg.name === 'ECDSA') return alg.namedCurve === 'P-384' ? 'ec-p384' : 'ec-p256';
  return alg.modulusLength >= 4096 ? 'rsa-4096' : 'rsa-2048';
}
