/**
 * SSH public keys and signatures for the key types a host key can have and Node can sign with:
 * ssh-ed25519, ecdsa-sha2-nistp{256,384,521} and ssh-rsa (RFC 4253 §6.6, RFC 5656, RFC 8709,
 * RFC 8332). DSA (gone from OpenSSH) and security-key (sk-*) types cannot sign on a host.
 */
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { SSHReader, sshMpint, sshString } from './ssh-wire.js';

export const SSH_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'] as const;
export type SSHKeyType = (typeof SSH_KEY_TYPES)[number];

const CURVES = {
  nistp256: { crv: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { crv: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { crv: 'P-521', hash: 'sha512', size: 66 },
} as const;
type CurveName = keyof typeof CURVES;

export function isSSHKeyType(t: string): t is SSHKeyType {
  return (SSH_KEY_TYPES as readonly string[]).includes(t);
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

function curveOf(type: SSHKeyType): (typeof CURVES)[CurveName] | undefined {
  return type.startsWith('ecdsa-sha2-') ? CURVES[type.slice('ecdsa-sha2-'.length) as CurveName] : undefined;
}

/** An uncompressed EC point (0x04 ‖ X ‖ Y) as JWK x and y. */
export function ecPoint(q: Uint8Array, size: number, what: string): { x: string; y: string } {
  if (q.length !== 1 + 2 * size || q[0] !== 0x04) throw new Error(`${what}: EC point is not an uncompressed point of the curve`);
  return { x: b64u(q.subarray(1, 1 + size)), y: b64u(q.subarray(1 + size)) };
}

/** The key fields that follow the type name, in a public key blob or a certificate, as a public KeyObject. */
export function readPublicKey(r: SSHReader, type: SSHKeyType, what: string): KeyObject {
  if (type === 'ssh-ed25519') {
    const pk = r.bytes();
    if (pk.length !== 32) throw new Error(`${what}: ed25519 key is not 32 bytes`);
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pk) }, format: 'jwk' });
  }
  if (type === 'ssh-rsa') {
    const e = r.mpint();
    const n = r.mpint();
    return createPublicKey({ key: { kty: 'RSA', n: b64u(n), e: b64u(e) }, format: 'jwk' });
  }
  const curve = curveOf(type) as (typeof CURVES)[CurveName];
  const name = r.string();
  if (`ecdsa-sha2-${name}` !== type) throw new Error(`${what}: curve ${JSON.stringify(name)} does not match key type ${type}`);
  return createPublicKey({ key: { kty: 'EC', crv: curve.crv, ...ecPoint(r.bytes(), curve.size, what) }, format: 'jwk' });
}

export interface SSHSignature {
  /** The signature algorithm name, e.g. "ssh-ed25519" or "rsa-sha2-512". */
  readonly format: string;
  readonly blob: Uint8Array;
}

/**
 * Signs `data` as an SSH signature with the host key. RSA uses rsa-sha2-512 (what OpenSSH picks);
 * spire-agent's Go signer picks ssh-rsa (SHA-1), and spire-server accepts both.
 */
export function sshSign(key: KeyObject, type: SSHKeyType, data: Uint8Array): SSHSignature {
  if (type === 'ssh-ed25519') return { format: type, blob: new Uint8Array(sign(null, data, key)) };
  if (type === 'ssh-rsa') return { format: 'rsa-sha2-512', blob: new Uint8Array(sign('sha512', data, key)) };
  const curve = curveOf(type) as (typeof CURVES)[CurveName];
  const rs = sign(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' });
  return { format: type, blob: new Uint8Array(Buffer.concat([sshMpint(rs.subarray(0, curve.size)), sshMpint(rs.subarray(curve.size))])) };
}

/** The SSH key type of a KeyObject, when it is one sshpop can use. */
export function sshKeyTypeOf(key: KeyObject): SSHKeyType | undefined {
  if (key.asymmetricKeyType === 'ed25519') return 'ssh-ed25519';
  if (key.asymmetricKeyType === 'rsa') return 'ssh-rsa';
  if (key.asymmetricKeyType === 'ec') {
    const crv = key.asymmetricKeyDetails?.namedCurve;
    if (crv === 'prime256v1') return 'ecdsa-sha2-nistp256';
    if (crv === 'secp384r1') return 'ecdsa-sha2-nistp384';
    if (crv === 'secp521r1') return 'ecdsa-sha2-nistp521';
  }
  return undefined;
}

/** A public key in the SSH wire format (what an authorized_keys line carries in base64). */
export function sshPublicKeyBlob(key: KeyObject): Uint8Array {
  const type = sshKeyTypeOf(key);
  const jwk = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'jwk' });
  const raw = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
  if (type === 'ssh-ed25519') return new Uint8Array(Buffer.concat([sshString(type), sshString(raw(jwk.x))]));
  if (type === 'ssh-rsa') return new Uint8Array(Buffer.concat([sshString(type), sshMpint(raw(jwk.e)), sshMpint(raw(jwk.n))]));
  if (type === undefined) throw new Error(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  const curveName = type.slice('ecdsa-sha2-'.length);
  return new Uint8Array(Buffer.concat([sshString(type), sshString(curveName), sshString(Buffer.concat([Buffer.from([4]), raw(jwk.x), raw(jwk.y)]))]));
}
