/**
 * TPMT_PUBLIC, the public area of a TPM object (TCG TPM 2.0 Library, Part 2), for the four
 * object types. `encodePublic`/`decodePublic` are exact inverses for every area a TPM returns;
 * the wire bytes are also kept (`PublicBlob`), because tpm_devid sends them as the TPM gave them
 * and an object's Name is a hash over exactly those bytes.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { ALG, ECC_CURVE, HASHES } from './constants.js';
import { TpmError } from './errors.js';
import { Reader, Writer } from './marshal.js';

/** TPMT_SYM_DEF_OBJECT; algorithm NULL means none (keyBits and mode are then 0 and not sent). */
export interface SymDef {
  readonly algorithm: number;
  readonly keyBits: number;
  readonly mode: number;
}
/** A scheme with its hash: RSASSA/SHA256, ECDSA/SHA256, HMAC/SHA256; hash NULL where it has none. */
export interface Scheme {
  readonly scheme: number;
  readonly hash: number;
}

interface Common {
  readonly nameAlg: number;
  /** TPMA_OBJECT bits (OBJECT_ATTR). */
  readonly attributes: number;
  readonly authPolicy: Uint8Array;
}
export interface RSAPublic extends Common {
  readonly type: typeof ALG.RSA;
  readonly symmetric: SymDef;
  readonly scheme: Scheme;
  readonly keyBits: number;
  /** 0 means the default, 65537. */
  readonly exponent: number;
  /** The modulus; empty in a template. */
  readonly unique: Uint8Array;
}
export interface ECCPublic extends Common {
  readonly type: typeof ALG.ECC;
  readonly symmetric: SymDef;
  readonly scheme: Scheme;
  readonly curve: number;
  readonly kdf: Scheme;
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}
export interface KeyedHashPublic extends Common {
  readonly type: typeof ALG.KEYEDHASH;
  /** NULL for a sealed data object; HMAC, or XOR with `kdf`, otherwise. */
  readonly scheme: Scheme & { readonly kdf?: number };
  readonly unique: Uint8Array;
}
export interface SymCipherPublic extends Common {
  readonly type: typeof ALG.SYMCIPHER;
  readonly symmetric: SymDef;
  readonly unique: Uint8Array;
}
export type PublicArea = RSAPublic | ECCPublic | KeyedHashPublic | SymCipherPublic;

/** A public area with the TPMT_PUBLIC bytes it was read from. */
export interface PublicBlob {
  readonly area: PublicArea;
  readonly bytes: Buffer;
}

export const NULL_SYM: SymDef = Object.freeze({ algorithm: ALG.NULL, keyBits: 0, mode: 0 });
export const NULL_SCHEME: Scheme = Object.freeze({ scheme: ALG.NULL, hash: ALG.NULL });

const MAX_DIGEST = 64;
const MAX_RSA_BYTES = 512;
const MAX_ECC_BYTES = 128;
/** RSA schemes whose details are a hash (TPMS_SCHEME_HASH); RSAES and NULL have none. */
const RSA_HASH_SCHEMES: readonly number[] = [ALG.RSASSA, ALG.RSAPSS, ALG.OAEP];
/** ECC schemes whose details are a hash. ECDAA (a hash and a count) is left out: nothing here uses it. */
const ECC_HASH_SCHEMES: readonly number[] = [ALG.ECDSA, ALG.ECDH, 0x001b /* SM2 */, 0x001c /* ECSCHNORR */, 0x0020 /* ECMQV */];

function writeSym(w: Writer, s: SymDef): void {
  w.u16(s.algorithm);
  if (s.algorithm !== ALG.NULL) w.u16(s.keyBits).u16(s.mode);
}
function readSym(r: Reader, what: string): SymDef {
  const algorithm = r.u16(`${what} algorithm`);
  if (algorithm === ALG.NULL) return NULL_SYM;
  return { algorithm, keyBits: r.u16(`${what} keyBits`), mode: r.u16(`${what} mode`) };
}

function writeScheme(w: Writer, s: Scheme, withHash: readonly number[]): void {
  w.u16(s.scheme);
  if (withHash.includes(s.scheme)) w.u16(s.hash);
}
function readScheme(r: Reader, what: string, withHash: readonly number[]): Scheme {
  const scheme = r.u16(`${what} scheme`);
  const hash = withHash.includes(scheme) ? r.u16(`${what} hash`) : ALG.NULL;
  if (!withHash.includes(scheme) && scheme !== ALG.NULL && scheme !== ALG.RSAES) throw r.malformed(`${what} scheme 0x${scheme.toString(16)} is not one the client knows`);
  return { scheme, hash };
}

export function encodePublic(w: Writer, p: PublicArea): Writer {
  w.u16(p.type).u16(p.nameAlg).u32(p.attributes).tpm2b(p.authPolicy, 'authPolicy', MAX_DIGEST);
  switch (p.type) {
    case ALG.RSA:
      writeSym(w, p.symmetric);
      writeScheme(w, p.scheme, RSA_HASH_SCHEMES);
      return w.u16(p.keyBits).u32(p.exponent).tpm2b(p.unique, 'RSA modulus', MAX_RSA_BYTES);
    case ALG.ECC:
      writeSym(w, p.symmetric);
      writeScheme(w, p.scheme, ECC_HASH_SCHEMES);
      w.u16(p.curve);
      writeScheme(w, p.kdf, p.kdf.scheme === ALG.NULL ? [] : [p.kdf.scheme]);
      return w.tpm2b(p.x, 'ECC point x', MAX_ECC_BYTES).tpm2b(p.y, 'ECC point y', MAX_ECC_BYTES);
    case ALG.KEYEDHASH:
      w.u16(p.scheme.scheme);
      if (p.scheme.scheme === ALG.HMAC) w.u16(p.scheme.hash);
      if (p.scheme.scheme === ALG.XOR) w.u16(p.scheme.hash).u16(p.scheme.kdf ?? ALG.NULL);
      return w.tpm2b(p.unique, 'keyedHash unique', MAX_DIGEST);
    case ALG.SYMCIPHER:
      writeSym(w, p.symmetric);
      return w.tpm2b(p.unique, 'symcipher unique', MAX_DIGEST);
  }
}

export function decodePublic(r: Reader): PublicArea {
  const type = r.u16('public type');
  const common = { nameAlg: r.u16('nameAlg'), attributes: r.u32('objectAttributes'), authPolicy: r.tpm2b('authPolicy', MAX_DIGEST) };
  switch (type) {
    case ALG.RSA: {
      const symmetric = readSym(r, 'RSA symmetric');
      const scheme = readScheme(r, 'RSA', RSA_HASH_SCHEMES);
      return { type, ...common, symmetric, scheme, keyBits: r.u16('RSA keyBits'), exponent: r.u32('RSA exponent'), unique: r.tpm2b('RSA modulus', MAX_RSA_BYTES) };
    }
    case ALG.ECC: {
      const symmetric = readSym(r, 'ECC symmetric');
      const scheme = readScheme(r, 'ECC', ECC_HASH_SCHEMES);
      const curve = r.u16('ECC curve');
      const kdfScheme = r.u16('ECC kdf scheme');
      const kdf = kdfScheme === ALG.NULL ? NULL_SCHEME : { scheme: kdfScheme, hash: r.u16('ECC kdf hash') };
      return { type, ...common, symmetric, scheme, curve, kdf, x: r.tpm2b('ECC point x', MAX_ECC_BYTES), y: r.tpm2b('ECC point y', MAX_ECC_BYTES) };
    }
    case ALG.KEYEDHASH: {
      const s = r.u16('keyedHash scheme');
      let scheme: KeyedHashPublic['scheme'];
      if (s === ALG.NULL) scheme = NULL_SCHEME;
      else if (s === ALG.HMAC) scheme = { scheme: s, hash: r.u16('HMAC hash') };
      else if (s === ALG.XOR) scheme = { scheme: s, hash: r.u16('XOR hash'), kdf: r.u16('XOR kdf') };
      else throw r.malformed(`keyedHash scheme 0x${s.toString(16)} is not one the TPM 2.0 specification defines`);
      return { type, ...common, scheme, unique: r.tpm2b('keyedHash unique', MAX_DIGEST) };
    }
    case ALG.SYMCIPHER:
      return { type, ...common, symmetric: readSym(r, 'symcipher'), unique: r.tpm2b('symcipher unique', MAX_DIGEST) };
    default:
      throw r.malformed(`public area type 0x${type.toString(16)} is not RSA, ECC, keyedHash or symcipher`);
  }
}

export function publicBytes(p: PublicArea): Buffer {
  return encodePublic(new Writer(), p).finish();
}

/** A whole TPMT_PUBLIC (devid_pub_path holds one); nothing may follow it. */
export function parsePublic(bytes: Uint8Array, context = 'TPMT_PUBLIC'): PublicBlob {
  const r = Reader.of(bytes, context);
  const area = decodePublic(r);
  r.end();
  return { area, bytes: Buffer.from(bytes) };
}

/** TPM2B_PUBLIC in a response: the area and its bytes. */
export function readPublicBlob(r: Reader, what: string): PublicBlob {
  const bytes = r.tpm2b(what);
  const inner = Reader.of(bytes, `${what} in ${r.context}`);
  const area = decodePublic(inner);
  inner.end();
  return { area, bytes };
}

/** An object's Name: nameAlg, then the nameAlg digest of its TPMT_PUBLIC (Part 1, "Names"). */
export function objectName(pub: PublicBlob | PublicArea): Buffer {
  const bytes = 'bytes' in pub ? pub.bytes : publicBytes(pub);
  const area = 'area' in pub ? pub.area : pub;
  const hash = HASHES[area.nameAlg];
  if (!hash) throw new TpmError('tpm_invalid_argument', `tpm: nameAlg 0x${area.nameAlg.toString(16)} is not a hash the client knows`);
  const alg = Buffer.alloc(2);
  alg.writeUInt16BE(area.nameAlg);
  return Buffer.concat([alg, createHash(hash.node).update(bytes).digest()]);
}

const CURVES: Readonly<Record<number, string>> = { [ECC_CURVE.NIST_P256]: 'P-256', [ECC_CURVE.NIST_P384]: 'P-384', [ECC_CURVE.NIST_P521]: 'P-521' };

/** The public key of an RSA or ECC area, to verify what the key signed. */
export function publicKeyOf(area: PublicArea): KeyObject {
  const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
  if (area.type === ALG.RSA) {
    const e = Buffer.alloc(4);
    e.writeUInt32BE(area.exponent === 0 ? 65537 : area.exponent);
    return createPublicKey({ key: { kty: 'RSA', n: b64(area.unique), e: b64(e.subarray(e.findIndex((x) => x !== 0))) }, format: 'jwk' });
  }
  if (area.type === ALG.ECC) {
    const crv = CURVES[area.curve];
    if (!crv) throw new TpmError('tpm_invalid_argument', `tpm: ECC curve 0x${area.curve.toString(16)} has no node:crypto equivalent`);
    return createPublicKey({ key: { kty: 'EC', crv, x: b64(area.x), y: b64(area.y) }, format: 'jwk' });
  }
  throw new TpmError('tpm_invalid_argument', 'tpm: only RSA and ECC objects have a public key');
}
