/**
 * sshpop: proves that the node holds the private half of an SSH host key certified by a CA the
 * server trusts (cert_authorities). The payload is the host certificate; the server answers with
 * a nonce, and the agent signs SHA-256(server nonce ‖ own nonce) with the host key as an SSH
 * signature (spire-agent v1.13.3's pkg/common/plugin/sshpop handshake).
 *
 * Files are loaded when the attestor is created, as spire-agent loads them at Configure, so a
 * wrong path or a key that does not match its certificate stops the start, naming the file. They
 * are read again at each attestation, so a renewed host certificate is picked up without a
 * restart. Expiry is checked at attestation (a node resuming a stored SVID needs no valid
 * certificate) and by `validate`.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../../clock.js';
import type { PluginContext } from '../../../config/plugin-catalog.js';
import { PluginDataReader } from '../../../config/plugin-data.js';
import type { PluginConfig } from '../../../config/types.js';
import { INPUT_LIMITS, readBoundedFile } from '../../../storage/bounded-file.js';
import type { Logger } from '../../../telemetry/logger.js';
import { NodeAttestorError } from '../errors.js';
import type { AttestationStream, NodeAttestor } from '../types.js';
import { SSHPOP, type SshpopConfig } from './config.js';
import { HostCertError, certificateFingerprint, hostCertificateProblem, parseHostCertificate, type HostCertificate } from './host-cert.js';
import { HostKeyError, parseHostKey, type HostKey } from './host-key.js';
import { sshPublicKeyBlob, sshSign } from './ssh-keys.js';

export { SSHPOP, parseSshpopConfig, type SshpopConfig } from './config.js';

const NONCE_LEN = 32;

type Key = 'host_key_path' | 'host_cert_path';

/** A problem with one of the two files, kept with its key so `validate` can place it. */
class MaterialError extends NodeAttestorError {
  constructor(
    readonly key: Key,
    readonly detail: string,
    cause?: unknown,
  ) {
    super('node_attestor_config', `nodeattestor(sshpop): ${detail}`, { cause });
  }
}

async function read(path: string, key: Key): Promise<string> {
  try {
    return await readBoundedFile(path, { maxBytes: INPUT_LIMITS.token, what: key });
  } catch (err) {
    throw new MaterialError(key, `unable to read ${key} ${JSON.stringify(path)}: ${(err as Error).message}`, err);
  }
}

const sshFingerprint = (blob: Uint8Array) => `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

/** The host key and its certificate, parsed and checked to belong together. */
export async function loadSshpopMaterial(c: SshpopConfig): Promise<{ cert: HostCertificate; key: HostKey }> {
  const [keyText, certText] = await Promise.all([read(c.hostKeyPath, 'host_key_path'), read(c.hostCertPath, 'host_cert_path')]);
  let key: HostKey;
  let cert: HostCertificate;
  try {
    key = parseHostKey(keyText);
  } catch (err) {
    if (!(err instanceof HostKeyError)) throw err;
    throw new MaterialError('host_key_path', `host key ${JSON.stringify(c.hostKeyPath)} ${err.message}`, err);
  }
  try {
    cert = parseHostCertificate(certText);
  } catch (err) {
    if (!(err instanceof HostCertError)) throw err;
    throw new MaterialError('host_cert_path', `host certificate ${JSON.stringify(c.hostCertPath)} ${err.message}`, err);
  }
  const keyBlob = sshPublicKeyBlob(key.privateKey);
  const certKeyBlob = sshPublicKeyBlob(cert.publicKey);
  if (Buffer.compare(Buffer.from(keyBlob), Buffer.from(certKeyBlob)) !== 0) {
    throw new MaterialError(
      'host_cert_path',
      `the host key in ${JSON.stringify(c.hostKeyPath)} (${key.type} ${sshFingerprint(keyBlob)}) does not match the key certified by ${JSON.stringify(c.hostCertPath)} (${cert.keyType} ${sshFingerprint(certKeyBlob)}); point host_key_path and host_cert_path at one host key and its certificate`,
    );
  }
  return { cert, key };
}

/** What the agent checks before attesting: the files, and the certificate's type, principals and validity at `nowMs`. */
async function loadUsable(c: SshpopConfig, nowMs: number): Promise<{ cert: HostCertificate; key: HostKey }> {
  const m = await loadSshpopMaterial(c);
  const problem = hostCertificateProblem(m.cert, nowMs);
  if (problem !== undefined) throw new MaterialError('host_cert_path', `host certificate ${JSON.stringify(c.hostCertPath)} ${problem}`);
  return m;
}

export async function createSshpopAttestor(c: SshpopConfig, deps: { log: Logger; clock: Clock }): Promise<NodeAttestor> {
  await loadSshpopMaterial(c);
  return new SshpopAttestor(c, deps);
}

/** For `validate`: the files as attestation would use them now, each problem under its key with file and line. */
export async function verifySshpopFiles(plugin: PluginConfig, c: SshpopConfig, ctx: PluginContext, clock: Clock): Promise<void> {
  try {
    await loadUsable(c, clock.now());
  } catch (err) {
    if (!(err instanceof MaterialError)) throw err;
    const r = new PluginDataReader(plugin, { file: ctx.file, text: ctx.text, allowUnknown: true });
    r.problem(err.key, err.detail);
    r.finish();
  }
}

export class SshpopAttestor implements NodeAttestor {
  readonly name = SSHPOP;

  constructor(
    private readonly config: SshpopConfig,
    private readonly deps: { log: Logger; clock: Clock },
  ) {}

  async attest(stream: AttestationStream): Promise<void> {
    const { cert, key } = await loadUsable(this.config, this.deps.clock.now());
    this.deps.log.info(
      { key_id: cert.keyId, principals: cert.principals.join(','), serial: cert.serial.toString(), fingerprint: certificateFingerprint(cert) },
      'Attesting with SSH host certificate',
    );
    const payload = JSON.stringify({ Certificate: Buffer.from(cert.blob).toString('base64') });
    const challenge = await stream.sendAttestationData({ type: SSHPOP, payload: new TextEncoder().encode(payload) });
    if (challenge === undefined) return;
    const next = await stream.sendChallengeResponse(respond(key, challenge));
    if (next !== undefined) throw new NodeAttestorError('node_attestor_unexpected_challenge', 'nodeattestor(sshpop): server issued a second challenge; sshpop answers one');
  }
}

const challengeError = (msg: string, cause?: unknown) => new NodeAttestorError('node_attestor_challenge', `nodeattestor(sshpop): ${msg}`, { cause });

/** The answer to `{"Nonce": <b64>}`: own nonce and the SSH signature over SHA-256(challenge ‖ own), in Go's JSON field order. */
export function respond(key: HostKey, challenge: Uint8Array, ownNonce: Uint8Array = randomBytes(NONCE_LEN)): Uint8Array {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(challenge).toString('utf8'));
  } catch (err) {
    throw challengeError(`failed to unmarshal challenge request: ${(err as Error).message}`, err);
  }
  // Go's encoding/json matches field names case-insensitively.
  const entry = typeof doc === 'object' && doc !== null ? Object.entries(doc).find(([k]) => k.toLowerCase() === 'nonce') : undefined;
  const nonce = typeof entry?.[1] === 'string' ? Buffer.from(entry[1], 'base64') : undefined;
  if (nonce?.length !== NONCE_LEN) throw challengeError('failed to combine nonces: invalid challenge nonce size');
  const data = createHash('sha256').update(nonce).update(ownNonce).digest();
  const sig = sshSign(key.privateKey, key.type, data);
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  return new TextEncoder().encode(JSON.stringify({ Nonce: b64(ownNonce), Signature: { Format: sig.format, Blob: b64(sig.blob), Rest: null } }));
}
