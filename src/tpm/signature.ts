/**
 * TPMT_SIGNATURE (Part 2) and the bytes a verifier outside the TPM wants: an RSA signature as is,
 * an ECDSA one as the DER SEQUENCE{r, s} X.509 uses (what spire-agent's tpm_devid sends).
 */
import { ALG } from './constants.js';
import { TpmError } from './errors.js';
import { Reader, Writer } from './marshal.js';
import type { Scheme } from './public-area.js';

export interface Signature {
  readonly sigAlg: number;
  readonly hash: number;
  /** RSASSA / RSAPSS: the signature. */
  readonly rsa?: Buffer;
  /** ECDSA and the other ECC schemes: r and s, big-endian. */
  readonly ecc?: { readonly r: Buffer; readonly s: Buffer };
  /** HMAC: the digest. */
  readonly hmac?: Buffer;
  /** The TPMT_SIGNATURE as the TPM sent it. */
  readonly bytes: Buffer;
}

const ECC_SIGS: readonly number[] = [ALG.ECDSA, 0x001a, 0x001b, 0x001c];

export function readSignature(r: Reader): Signature {
  const start = r.position;
  const sigAlg = r.u16('sigAlg');
  if (sigAlg === ALG.NULL) return { sigAlg, hash: ALG.NULL, bytes: r.slice(start) };
  const hash = r.u16('signature hash');
  if (sigAlg === ALG.RSASSA || sigAlg === ALG.RSAPSS) {
    const rsa = r.tpm2b('RSA signature', 512);
    return { sigAlg, hash, rsa, bytes: r.slice(start) };
  }
  if (ECC_SIGS.includes(sigAlg)) {
    const ecc = { r: r.tpm2b('ECC signature r', 128), s: r.tpm2b('ECC signature s', 128) };
    return { sigAlg, hash, ecc, bytes: r.slice(start) };
  }
  if (sigAlg === ALG.HMAC) {
    const size = { [ALG.SHA1]: 20, [ALG.SHA256]: 32, [ALG.SHA384]: 48, [ALG.SHA512]: 64 }[hash];
    if (size === undefined) throw r.malformed(`HMAC signature hash 0x${hash.toString(16)} is not one the client knows`);
    return { sigAlg, hash, hmac: r.bytes(size, 'HMAC signature'), bytes: r.slice(start) };
  }
  throw r.malformed(`signature algorithm 0x${sigAlg.toString(16)} is not one the client knows`);
}

/** TPMT_SIG_SCHEME: NULL lets the key's own scheme decide. */
export function writeSigScheme(w: Writer, s: Scheme): Writer {
  w.u16(s.scheme);
  if (s.scheme !== ALG.NULL) w.u16(s.hash);
  return w;
}

function derInteger(v: Buffer): Buffer {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  let body = v.subarray(i);
  if (body.length === 0) body = Buffer.from([0]);
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02]), derLength(body.length), body]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  return n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
}

/** The signature as verifiers outside the TPM take it (node:crypto, Go's crypto/x509). */
export function signatureBytes(sig: Signature): Buffer {
  if (sig.rsa) return sig.rsa;
  if (sig.ecc) {
    const body = Buffer.concat([derInteger(sig.ecc.r), derInteger(sig.ecc.s)]);
    return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
  }
  throw new TpmError('tpm_invalid_argument', `tpm: a signature of algorithm 0x${sig.sigAlg.toString(16)} has no RSA or ECDSA form`);
}
