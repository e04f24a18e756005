/**
 * The DevID files an operator provisions: the certificate chain (PEM, leaf first), and the key's
 * two TPM blobs as spire-agent reads them — devid_pub_path a TPMT_PUBLIC, devid_priv_path the
 * contents of a TPM2B_PRIVATE, both WITHOUT the 2-byte size prefix that `tpm2_create -u/-r`
 * writes. That prefix is the usual provisioning mistake, so it is recognised and named rather
 * than reported as a parse error deep in the TPM.
 *
 * Loading needs no TPM, so `validate` runs all of it: files readable, parseable, and the
 * certificate's key the same as the key in the public blob (else the server's proof-of-possession
 * check fails, after a full TPM exchange, with a bare "verification error").
 */
import { X509Certificate } from 'node:crypto';
import { open } from 'node:fs/promises';
import { pemDecode } from '../../../svid/der.js';
import { ALG, OBJECT_ATTR } from '../../../tpm/constants.js';
import { parsePublic, publicKeyOf, type PublicBlob } from '../../../tpm/public-area.js';
import type { TpmDevidConfig } from './config.js';
import { TpmDevidError } from './errors.js';

export type FileKey = 'devid_cert_path' | 'devid_pub_path' | 'devid_priv_path';

/** A problem with one of the files, kept with its key so `validate` can place it at its line. */
export class DevIDFileError extends TpmDevidError {
  constructor(
    readonly key: FileKey,
    readonly detail: string,
    cause?: unknown,
  ) {
    super('tpm_devid_files', detail, { cause });
  }
}

export interface DevIDMaterial {
  /** DER certificates, leaf first, as the payload's DevIDCert. */
  readonly certificates: readonly Buffer[];
  readonly leaf: X509Certificate;
  readonly pub: PublicBlob;
  readonly priv: Buffer;
  /** The hash of the key's signing scheme: TPM2_Hash uses it for the proof of possession. */
  readonly signHash: number;
}

/** Key blobs are a few hundred bytes; a certificate chain a few KiB. 1 MiB says "wrong file". */
const MAX_FILE = 1 << 20;

async function readFileBytes(path: string, key: FileKey): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_FILE) throw new Error(`${st.size} bytes, more than a DevID file can be (${MAX_FILE})`);
    return await fh.readFile();
  } catch (err) {
    throw new DevIDFileError(key, `cannot read ${key} ${JSON.stringify(path)}: ${(err as Error).message}`, err);
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** True when `b` is a TPM2B: a 2-byte big-endian size that counts exactly the rest. */
function hasSizePrefix(b: Buffer): boolean {
  return b.length >= 2 && b.readUInt16BE(0) === b.length - 2;
}

const STRIP = 'spire-agent reads it without the 2-byte size prefix tpm2_create writes; strip it (tail -c +3 FILE > FILE.bin)';

export function parseDevIDPublic(bytes: Buffer, path: string): PublicBlob {
  try {
    return parsePublic(bytes, `devid_pub_path ${JSON.stringify(path)}`);
  } catch (err) {
    // Only a blob whose rest is a whole TPMT_PUBLIC is the TPM2B mistake; anything else is just not a public area.
    if (hasSizePrefix(bytes) && parses(bytes.subarray(2))) {
      throw new DevIDFileError('devid_pub_path', `devid_pub_path ${JSON.stringify(path)} is a TPM2B_PUBLIC (it starts with its own size); ${STRIP}`);
    }
    throw new DevIDFileError('devid_pub_path', `devid_pub_path ${JSON.stringify(path)} is not a TPMT_PUBLIC: ${(err as Error).message}`, err);
  }
}

function parses(b: Buffer): boolean {
  try {
    parsePublic(b);
    return true;
  } catch {
    return false;
  }
}

/** The checks spire-agent makes when loading the key (signing key, non-NULL scheme hash), plus what the server will verify. */
export function signingHashOf(pub: PublicBlob, path: string): number {
  const { area } = pub;
  const where = `the key in devid_pub_path ${JSON.stringify(path)}`;
  if (area.type !== ALG.RSA && area.type !== ALG.ECC) throw new DevIDFileError('devid_pub_path', `${where} is neither RSA nor ECC (type 0x${area.type.toString(16)})`);
  if (!(area.attributes & OBJECT_ATTR.sign)) throw new DevIDFileError('devid_pub_path', `${where} is not a signing key (no "sign" attribute); a DevID key signs the server's nonce`);
  if (area.scheme.hash === ALG.NULL) {
    throw new DevIDFileError('devid_pub_path', `${where} has no signing scheme (its hash is NULL); create it with one, e.g. tpm2_create -G rsa2048:rsassa-sha256:null`);
  }
  // spire-server verifies the proof of possession as SHA256-RSA (PKCS#1 v1.5) or ECDSA-SHA256.
  const expected = area.type === ALG.RSA ? ALG.RSASSA : ALG.ECDSA;
  if (area.scheme.scheme !== expected || area.scheme.hash !== ALG.SHA256) {
    throw new DevIDFileError(
      'devid_pub_path',
      `${where} signs with scheme 0x${area.scheme.scheme.toString(16)}/hash 0x${area.scheme.hash.toString(16)}; spire-server checks the DevID proof of possession as ${area.type === ALG.RSA ? 'RSASSA' : 'ECDSA'} with SHA-256, so the key needs that scheme`,
    );
  }
  return area.scheme.hash;
}

function parseChain(text: Buffer, path: string): { certificates: Buffer[]; leaf: X509Certificate } {
  let ders: Uint8Array[];
  try {
    ders = pemDecode(text, 'CERTIFICATE');
  } catch (err) {
    throw new DevIDFileError('devid_cert_path', `cannot load certificate(s) from devid_cert_path ${JSON.stringify(path)}: ${(err as Error).message}`, err);
  }
  if (ders.length === 0) throw new DevIDFileError('devid_cert_path', `devid_cert_path ${JSON.stringify(path)} holds no PEM CERTIFICATE block`);
  const parsed = ders.map((d, i) => {
    try {
      return new X509Certificate(d);
    } catch (err) {
      throw new DevIDFileError('devid_cert_path', `certificate ${i + 1} in devid_cert_path ${JSON.stringify(path)} is not an X.509 certificate: ${(err as Error).message}`, err);
    }
  });
  return { certificates: ders.map((d) => Buffer.from(d)), leaf: parsed[0]! };
}

function spki(k: { export(o: { type: 'spki'; format: 'der' }): Buffer }): Buffer {
  return k.export({ type: 'spki', format: 'der' });
}

/** Reads and checks the three files; throws DevIDFileError naming the file and what to do. */
export async function loadDevIDMaterial(c: Pick<TpmDevidConfig, 'devIDCertPath' | 'devIDPubPath' | 'devIDPrivPath'>): Promise<DevIDMaterial> {
  const [certText, pubBytes, priv] = await Promise.all([
    readFileBytes(c.devIDCertPath, 'devid_cert_path'),
    readFileBytes(c.devIDPubPath, 'devid_pub_path'),
    readFileBytes(c.devIDPrivPath, 'devid_priv_path'),
  ]);
  const { certificates, leaf } = parseChain(certText, c.devIDCertPath);
  const pub = parseDevIDPublic(pubBytes, c.devIDPubPath);
  const signHash = signingHashOf(pub, c.devIDPubPath);
  if (priv.length < 4) throw new DevIDFileError('devid_priv_path', `devid_priv_path ${JSON.stringify(c.devIDPrivPath)} is ${priv.length} bytes: not a TPM private blob`);
  // TPM2B_PRIVATE contents start with the integrity HMAC's own TPM2B (size 32 or so), never with
  // the size of everything that follows: a file that does is the whole TPM2B.
  if (hasSizePrefix(priv)) throw new DevIDFileError('devid_priv_path', `devid_priv_path ${JSON.stringify(c.devIDPrivPath)} is a TPM2B_PRIVATE (it starts with its own size); ${STRIP}`);
  const certKey = spki(leaf.publicKey);
  const blobKey = spki(publicKeyOf(pub.area));
  if (!certKey.equals(blobKey)) {
    throw new DevIDFileError(
      'devid_cert_path',
      `the DevID certificate in devid_cert_path ${JSON.stringify(c.devIDCertPath)} (subject ${JSON.stringify(leaf.subject.replace(/\n/g, ', '))}) is not for the key in devid_pub_path ${JSON.stringify(c.devIDPubPath)}; point both at the same DevID (the certificate's public key must be the blob's)`,
    );
  }
  return { certificates, leaf, pub, priv, signHash };
}
