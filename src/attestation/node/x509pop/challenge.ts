/**
 * x509pop's proof of possession (SPIRE's pkg/common/plugin/x509pop wire format). The server sends
 * a 32-byte nonce; the agent picks its own, and signs D = SHA-256(challenge ‖ own) *as a digest*:
 * ECDSA signs D directly (no second hash) and RSA uses PSS with D as the message hash. Node's
 * sign() always hashes its input, so ECDSA uses @noble/curves' prehash-free signing and RSA-PSS
 * is encoded here (RFC 8017 EMSA-PSS) and exponentiated by OpenSSL with no padding.
 */
import { constants, createHash, privateEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { NodeAttestorError } from '../errors.js';

const NONCE_LEN = 32;

interface NonceOnly {
  nonce?: unknown;
}

export interface X509popChallenge {
  readonly rsaNonce?: Uint8Array;
  readonly ecdsaNonce?: Uint8Array;
}

const fail = (msg: string, cause?: unknown) => new NodeAttestorError('node_attestor_challenge', `nodeattestor(x509pop): ${msg}`, { cause });

export function parseChallenge(bytes: Uint8Array): X509popChallenge {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw fail(`unable to unmarshal challenge: ${(err as Error).message}`, err);
  }
  if (typeof doc !== 'object' || doc === null) throw fail('unable to unmarshal challenge: not a JSON object');
  const o = doc as Record<string, unknown>;
  const nonce = (v: unknown): Uint8Array | undefined => {
    if (v === null || v === undefined) return undefined;
    const n = (v as NonceOnly).nonce;
    if (typeof n !== 'string') throw fail('unable to unmarshal challenge: nonce must be base64');
    return new Uint8Array(Buffer.from(n, 'base64'));
  };
  return { rsaNonce: nonce(o['rsa_signature']), ecdsaNonce: nonce(o['ecdsa_signature']) };
}

function combine(challenge: Uint8Array, own: Uint8Array): Buffer {
  if (challenge.length !== NONCE_LEN) throw fail('failed to calculate challenge response: invalid challenge nonce');
  return createHash('sha256').update(challenge).update(own).digest();
}

/** The JSON answer, in the field order Go's encoding/json writes. */
export function calculateResponse(key: KeyObject, challenge: X509popChallenge, ownNonce: Uint8Array = randomBytes(NONCE_LEN)): Uint8Array {
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  if (key.asymmetricKeyType === 'rsa') {
    if (!challenge.rsaNonce) throw fail('failed to calculate challenge response: expecting RSA challenge');
    const sig = signPssPrehashed(key, combine(challenge.rsaNonce, ownNonce));
    return json({ rsa_signature: { nonce: b64(ownNonce), signature: b64(sig) }, ecdsa_signature: null });
  }
  if (key.asymmetricKeyType === 'ec') {
    if (!challenge.ecdsaNonce) throw fail('failed to calculate challenge response: expecting ECDSA challenge');
    const { r, s } = signEcdsaPrehashed(key, combine(challenge.ecdsaNonce, ownNonce));
    return json({ rsa_signature: null, ecdsa_signature: { nonce: b64(ownNonce), r: b64(r), s: b64(s) } });
  }
  throw fail(`failed to calculate challenge response: unsupported private key type ${key.asymmetricKeyType ?? 'unknown'}`);
}

function json(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}

const CURVES = { 'P-256': p256, 'P-384': p384, 'P-521': p521 } as const;

/** ECDSA over an already computed digest; r and s as minimal unsigned big-endian bytes (Go's big.Int.Bytes()). */
export function signEcdsaPrehashed(key: KeyObject, digest: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const jwk = key.export({ format: 'jwk' });
  const curve = CURVES[jwk.crv as keyof typeof CURVES];
  if (!curve || typeof jwk.d !== 'string') throw fail(`failed to calculate challenge response: unsupported EC curve ${String(jwk.crv)}`);
  const d = new Uint8Array(Buffer.from(jwk.d, 'base64url'));
  const sig = curve.sign(digest, d, { prehash: false, format: 'compact' });
  const half = sig.length / 2;
  return { r: minimal(sig.slice(0, half)), s: minimal(sig.slice(half)) };
}

function minimal(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.slice(i);
}

/** RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) where `mHash` is the message hash itself. */
export function signPssPrehashed(key: KeyObject, mHash: Uint8Array): Buffer {
  const modBits = key.asymmetricKeyDetails?.modulusLength;
  if (!modBits) throw fail('failed to calculate challenge response: RSA key without modulus length');
  const hLen = 32;
  const sLen = 32;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < hLen + sLen + 2) throw fail('failed to calculate challenge response: RSA key too small for PSS');
  const salt = randomBytes(sLen);
  const h = createHash('sha256').update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.alloc(emLen - hLen - 1);
  db[emLen - sLen - hLen - 2] = 0x01;
  salt.copy(db, emLen - sLen - hLen - 1);
  const mask = mgf1(h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (mask[i] as number);
  db[0] = (db[0] as number) & (0xff >> (8 * emLen - emBits));
  const em = Buffer.concat([db, h, Buffer.from([0xbc])]);
  // The modulus may be one byte longer than EM (when modBits % 8 == 1); left-pad to the key size.
  const k = Math.ceil(modBits / 8);
  const input = em.length === k ? em : Buffer.concat([Buffer.alloc(k - em.length), em]);
  return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, input);
}

function mgf1(seed: Buffer, len: number): Buffer {
  const out: Buffer[] = [];
  for (let c = 0; out.length * 32 < len; c++) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(c);
    out.push(createHash('sha256').update(seed).update(ctr).digest());
  }
  return Buffer.concat(out).subarray(0, len);
}
