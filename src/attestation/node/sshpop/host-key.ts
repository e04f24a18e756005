/**
 * The host's private key from host_key_path, in the formats spire-agent's Go (x/crypto/ssh
 * ParsePrivateKey) reads: OpenSSH's own ("BEGIN OPENSSH PRIVATE KEY", what ssh-keygen writes
 * and sshd uses) and PEM PKCS#1, SEC1 and PKCS#8. Node reads the PEM ones; the OpenSSH format
 * (PROTOCOL.key) is read here. Like sshd's host keys, it must not be passphrase protected.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { ecPoint, isSSHKeyType, sshKeyTypeOf, type SSHKeyType } from './ssh-keys.js';
import { SSHReader } from './ssh-wire.js';

const MAGIC = 'openssh-key-v1\0';

export interface HostKey {
  readonly type: SSHKeyType;
  readonly privateKey: KeyObject;
}

/** Thrown for a key sshpop cannot use; the message is for the operator. */
export class HostKeyError extends Error {}

export function parseHostKey(text: string): HostKey {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) throw new HostKeyError('holds no PEM-armoured private key (expected "-----BEGIN OPENSSH PRIVATE KEY-----" as ssh-keygen writes it)');
  const label = m[1] as string;
  if (label === 'OPENSSH PRIVATE KEY') return parseOpenSSH(Buffer.from((m[2] as string).replace(/\s+/g, ''), 'base64'));
  if (label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(m[2] as string)) throw passphrase();
  let key: KeyObject;
  try {
    key = createPrivateKey(m[0]);
  } catch (err) {
    throw new HostKeyError(`cannot be read as a ${label}: ${(err as Error).message}`);
  }
  const type = sshKeyTypeOf(key);
  if (!type) throw new HostKeyError(`is a ${key.asymmetricKeyType ?? 'unknown'} key; sshpop needs an ed25519, ECDSA (P-256/384/521) or RSA host key`);
  return { type, privateKey: key };
}

const passphrase = () => new HostKeyError('is passphrase protected; sshpop needs the host key unencrypted, as sshd reads it');

function parseOpenSSH(der: Buffer): HostKey {
  if (der.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) throw new HostKeyError('is not an OpenSSH private key (bad magic)');
  try {
    const r = new SSHReader(der.subarray(MAGIC.length), 'host key');
    const cipher = r.string();
    r.string(); // kdf name
    r.bytes(); // kdf options
    if (cipher !== 'none') throw passphrase();
    if (r.uint32() !== 1) throw new HostKeyError('holds several keys; sshpop needs a file with one host key');
    r.bytes(); // public key
    const p = new SSHReader(r.bytes(), 'host key');
    if (p.uint32() !== p.uint32()) throw new HostKeyError('is corrupt (check bytes differ)');
    const type = p.string();
    if (!isSSHKeyType(type)) throw new HostKeyError(`is a ${type} key; sshpop needs an ed25519, ECDSA or RSA host key`);
    return { type, privateKey: readPrivate(p, type) };
  } catch (err) {
    if (err instanceof HostKeyError) throw err;
    throw new HostKeyError(`cannot be parsed as an OpenSSH private key: ${(err as Error).message}`);
  }
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const big = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`);
const unbig = (n: bigint) => {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
};

function readPrivate(p: SSHReader, type: SSHKeyType): KeyObject {
  if (type === 'ssh-ed25519') {
    const pub = p.bytes();
    const priv = p.bytes();
    // OpenSSH stores seed ‖ public key.
    if (pub.length !== 32 || priv.length !== 64) throw new Error('ed25519 key has the wrong size');
    return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(priv.subarray(0, 32)), x: b64u(pub) }, format: 'jwk' });
  }
  if (type === 'ssh-rsa') {
    const [n, e, d, iqmp, pp, q] = [p.mpint(), p.mpint(), p.mpint(), p.mpint(), p.mpint(), p.mpint()];
    // JWK needs the CRT exponents OpenSSH does not store.
    const dp = unbig(big(d) % (big(pp) - 1n));
    const dq = unbig(big(d) % (big(q) - 1n));
    return createPrivateKey({
      key: { kty: 'RSA', n: b64u(n), e: b64u(e), d: b64u(d), p: b64u(pp), q: b64u(q), dp: b64u(dp), dq: b64u(dq), qi: b64u(iqmp) },
      format: 'jwk',
    });
  }
  const curve = p.string();
  const spec = { nistp256: ['P-256', 32], nistp384: ['P-384', 48], nistp521: ['P-521', 66] }[curve] as [string, number] | undefined;
  if (!spec || `ecdsa-sha2-${curve}` !== type) throw new Error(`curve ${JSON.stringify(curve)} does not match key type ${type}`);
  const q = p.bytes();
  const d = p.mpint();
  if (d.length > spec[1]) throw new Error('EC private scalar is too long');
  const dFull = Buffer.concat([Buffer.alloc(spec[1] - d.length), d]);
  return createPrivateKey({ key: { kty: 'EC', crv: spec[0], ...ecPoint(q, spec[1], 'host key'), d: b64u(dFull) }, format: 'jwk' });
}
