/**
 * DevID files without a TPM, for tests of file handling: a software key pair written as the
 * TPMT_PUBLIC a TPM would give for it (the modulus or point in `unique`), a stand-in private
 * blob, and a certificate for the key issued by openssl. They load and verify like real ones;
 * only a TPM could tell that the private blob is not one.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALG } from '../../../src/tpm/constants.js';
import { publicBytes, type PublicArea } from '../../../src/tpm/public-area.js';
import { signingKeyTemplateECC, signingKeyTemplateRSA } from '../../../src/tpm/templates.js';

export interface DevIDFiles {
  certPath: string;
  pubPath: string;
  privPath: string;
  pubBytes: Buffer;
  key: KeyObject;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Writes name.pem, name_pub.bin, name_priv.bin in dir. `area` adjusts the public area (scheme, attributes). */
export function writeDevIDFiles(dir: string, name: string, opts: { type?: 'rsa' | 'ecc'; area?: (a: PublicArea) => PublicArea; cn?: string } = {}): DevIDFiles {
  const type = opts.type ?? 'rsa';
  const { publicKey, privateKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const b = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
  let area: PublicArea = type === 'rsa' ? { ...signingKeyTemplateRSA(), unique: b(jwk.n) } : { ...signingKeyTemplateECC(), x: b(jwk.x), y: b(jwk.y) };
  if (opts.area) area = opts.area(area);
  const pubBytes = publicBytes(area);
  const keyPath = join(dir, `${name}.key`);
  writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const certPath = join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-new', '-key', keyPath, '-subj', `/CN=${opts.cn ?? name}`, '-days', '1', '-out', certPath], { stdio: 'ignore' });
  const pubPath = join(dir, `${name}_pub.bin`);
  writeFileSync(pubPath, pubBytes);
  // TPM2B_PRIVATE contents begin with the integrity HMAC as a TPM2B (32 bytes for SHA-256).
  const priv = Buffer.concat([Buffer.from([0x00, 0x20]), randomBytes(32), randomBytes(190)]);
  const privPath = join(dir, `${name}_priv.bin`);
  writeFileSync(privPath, priv);
  return { certPath, pubPath, privPath, pubBytes, key: publicKey };
}

export { ALG };
