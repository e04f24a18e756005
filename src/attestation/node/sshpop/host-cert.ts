/**
 * An OpenSSH certificate (PROTOCOL.certkeys) read from host_cert_path, an authorized_keys-style
 * line "<type>-cert-v01@openssh.com <base64> [comment]" as `ssh-keygen -s` writes it. The agent
 * sends the decoded base64 as is; the fields are read so that what the server would refuse
 * (expired, a user certificate, no principals) is said here first, in words an operator can act on.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { isSSHKeyType, readPublicKey, type SSHKeyType } from './ssh-keys.js';
import { SSHReader } from './ssh-wire.js';

const CERT_SUFFIX = '-cert-v01@openssh.com';
/** PROTOCOL.certkeys: SSH_CERT_TYPE_USER = 1, SSH_CERT_TYPE_HOST = 2. */
export const HOST_CERT = 2;
/** valid_before of a certificate without expiry (ssh-keygen -V forever). */
const FOREVER = 0xffff_ffff_ffff_ffffn;

export interface HostCertificate {
  /** The certificate's wire bytes: what the payload carries and the agent ID hashes. */
  readonly blob: Uint8Array;
  /** The certified key's type, e.g. "ssh-ed25519" for an ssh-ed25519-cert-v01@openssh.com. */
  readonly keyType: SSHKeyType;
  readonly publicKey: KeyObject;
  readonly serial: bigint;
  /** 1 user, 2 host. */
  readonly certType: number;
  readonly keyId: string;
  readonly principals: readonly string[];
  /** Unix seconds; validBefore undefined = forever. */
  readonly validAfter: bigint;
  readonly validBefore: bigint | undefined;
  /** The type of the CA key that signed it, e.g. "ssh-ed25519". */
  readonly signatureKeyType: string;
}

/** Thrown for a file that is not a certificate sshpop can use; the message is for the operator. */
export class HostCertError extends Error {}

/** Parses the text of host_cert_path. */
export function parseHostCertificate(text: string): HostCertificate {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
  if (line === undefined) throw new HostCertError('is empty');
  const [type = '', b64 = ''] = line.split(/\s+/);
  if (!type.endsWith(CERT_SUFFIX)) {
    if (isSSHKeyType(type) || type.startsWith('sk-') || type === 'ssh-dss') {
      throw new HostCertError(`holds a public key (${type}), not a certificate; sign the host key with ssh-keygen -s <CA key> -h -I <id> -n <hostname> <host key>.pub and point host_cert_path at the -cert.pub it writes`);
    }
    throw new HostCertError(`is not an OpenSSH certificate (expected "<type>${CERT_SUFFIX} <base64>", found ${JSON.stringify(type.slice(0, 40))})`);
  }
  const keyType = type.slice(0, -CERT_SUFFIX.length);
  if (!isSSHKeyType(keyType)) throw new HostCertError(`certifies a ${keyType} key, which cannot sign here; use an ed25519, ECDSA or RSA host key`);
  const blob = new Uint8Array(Buffer.from(b64, 'base64'));
  try {
    return parseBlob(blob, type, keyType);
  } catch (err) {
    throw new HostCertError(`cannot be parsed: ${(err as Error).message}`);
  }
}

function parseBlob(blob: Uint8Array, type: string, keyType: SSHKeyType): HostCertificate {
  const what = 'certificate';
  const r = new SSHReader(blob, what);
  const inner = r.string();
  if (inner !== type) throw new Error(`its data says ${JSON.stringify(inner)}, its line says ${JSON.stringify(type)}`);
  r.bytes(); // nonce
  const publicKey = readPublicKey(r, keyType, what);
  const serial = r.uint64();
  const certType = r.uint32();
  const keyId = r.string();
  const principals: string[] = [];
  const p = new SSHReader(r.bytes(), 'certificate principals');
  while (!p.done) principals.push(p.string());
  const validAfter = r.uint64();
  const validBefore = r.uint64();
  r.bytes(); // critical options
  r.bytes(); // extensions
  r.bytes(); // reserved
  const signatureKeyType = new SSHReader(r.bytes(), 'certificate signature key').string();
  r.bytes(); // signature
  if (!r.done) throw new Error('trailing bytes after the signature');
  return Object.freeze({
    blob,
    keyType,
    publicKey,
    serial,
    certType,
    keyId,
    principals: Object.freeze(principals),
    validAfter,
    validBefore: validBefore === FOREVER ? undefined : validBefore,
    signatureKeyType,
  });
}

/** spire-server's agent ID path element: unpadded base64url of SHA-256 over the certificate's wire bytes. */
export function certificateFingerprint(cert: HostCertificate): string {
  return createHash('sha256').update(cert.blob).digest('base64url');
}

/** Why spire-server v1.13.3 would refuse this certificate at `nowMs` (before the CA check), if it would. */
export function hostCertificateProblem(cert: HostCertificate, nowMs: number): string | undefined {
  if (cert.certType !== HOST_CERT) {
    return `is a ${cert.certType === 1 ? 'user' : `type ${cert.certType}`} certificate, not a host certificate; sign the host key again with ssh-keygen -s <CA key> -h (the -h makes it a host certificate)`;
  }
  if (cert.principals.length === 0) return 'names no principals, and the server requires one; sign the host key again with -n <hostname>';
  const now = BigInt(Math.floor(nowMs / 1000));
  const iso = (s: bigint) => new Date(Number(s) * 1000).toISOString();
  if (now < cert.validAfter) return `is not valid until ${iso(cert.validAfter)} (check the clock, or sign it again with a -V that starts earlier)`;
  if (cert.validBefore !== undefined && now >= cert.validBefore) return `expired at ${iso(cert.validBefore)}; renew it (ssh-keygen -s <CA key> -h ...) and the agent reads the new one at its next attestation`;
  return undefined;
}
