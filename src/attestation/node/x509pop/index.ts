/**
 * x509pop: proves possession of the private key of a certificate the server's CA bundle trusts.
 * Key and certificates are read when the attestor is created (spire-agent loads them at
 * Configure), so a wrong path fails at start, naming the file.
 */
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { INPUT_LIMITS, readBoundedFile } from '../../../storage/bounded-file.js';
import { pemDecode } from '../../../svid/der.js';
import { NodeAttestorError } from '../errors.js';
import type { AttestationStream, NodeAttestor } from '../types.js';
import type { X509popConfig } from './config.js';

export { parseX509popConfig, type X509popConfig } from './config.js';

export const X509POP = 'x509pop';

const err = (msg: string, cause?: unknown) => new NodeAttestorError('node_attestor_config', `nodeattestor(x509pop): ${msg}`, { cause });

async function readPem(path: string, key: string): Promise<string> {
  try {
    // Private keys are small; certificate files may hold a chain.
    return await readBoundedFile(path, { maxBytes: key === 'private_key_path' ? INPUT_LIMITS.token : INPUT_LIMITS.bundle, what: key });
  } catch (e) {
    throw err(`unable to load keypair: ${key} ${JSON.stringify(path)}: ${(e as Error).message}`, e);
  }
}

/** Certificates in the order sent: certificate_path's blocks (leaf first), then intermediates_path's. */
export async function loadX509popMaterial(c: X509popConfig): Promise<{ key: KeyObject; certificates: Uint8Array[] }> {
  const certPem = await readPem(c.certificatePath, 'certificate_path');
  const keyPem = await readPem(c.privateKeyPath, 'private_key_path');
  let certificates: Uint8Array[];
  try {
    certificates = pemDecode(certPem, 'CERTIFICATE');
  } catch (e) {
    throw err(`unable to load keypair: certificate_path ${JSON.stringify(c.certificatePath)}: ${(e as Error).message}`, e);
  }
  if (certificates.length === 0) throw err(`unable to load keypair: no certificates in certificate_path ${JSON.stringify(c.certificatePath)}`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw err(`unable to load keypair: private_key_path ${JSON.stringify(c.privateKeyPath)} is not a PEM private key (PKCS#1, PKCS#8 or SEC1): ${(e as Error).message}`, e);
  }
  const leafSpki = new X509Certificate(certificates[0] as Uint8Array).publicKey.export({ type: 'spki', format: 'der' });
  const keySpki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  if (Buffer.compare(Buffer.from(leafSpki), Buffer.from(keySpki)) !== 0) {
    throw err(`unable to load keypair: private key in ${JSON.stringify(c.privateKeyPath)} does not match the certificate in ${JSON.stringify(c.certificatePath)}`);
  }
  if (c.intermediatesPath !== undefined) {
    const text = await readPem(c.intermediatesPath, 'intermediates_path');
    try {
      certificates.push(...pemDecode(text, 'CERTIFICATE'));
    } catch (e) {
      throw err(`unable to load intermediate certificates from ${JSON.stringify(c.intermediatesPath)}: ${(e as Error).message}`, e);
    }
  }
  return { key, certificates };
}

export async function createX509popAttestor(c: X509popConfig): Promise<NodeAttestor> {
  await loadX509popMaterial(c);
  return new X509popAttestor(c);
}

export class X509popAttestor implements NodeAttestor {
  readonly name = X509POP;

  constructor(private readonly config: X509popConfig) {}

  async attest(stream: AttestationStream): Promise<void> {
    // Re-read on every attestation so renewed certificates on disk are picked up, as spire-agent does.
    const { key, certificates } = await loadX509popMaterial(this.config);
    const payload = JSON.stringify({ certificates: certificates.map((c) => Buffer.from(c).toString('base64')) });
    let challenge = await stream.sendAttestationData({ type: X509POP, payload: new TextEncoder().encode(payload) });
    // The challenge code brings an elliptic-curve library; loaded only when this attestor runs.
    const { calculateResponse, parseChallenge } = await import('./challenge.js');
    while (challenge !== undefined) {
      challenge = await stream.sendChallengeResponse(calculateResponse(key, parseChallenge(challenge)));
    }
  }
}
