/**
 * sshpop against host keys and certificates made by the real ssh-keygen: the payload and the
 * challenge answer spire-server v1.13.3 expects (its verification is in
 * test/interop/server/sshpop.test.ts), and the refusals an operator can act on.
 */
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkNodeAttestorConfig, createNodeAttestor } from '../../../../src/attestation/node/catalog.js';
import { noTpm } from '../../../helpers/no-tpm.js';
import { parseSshpopConfig } from '../../../../src/attestation/node/sshpop/config.js';
import { createSshpopAttestor, loadSshpopMaterial, respond } from '../../../../src/attestation/node/sshpop/index.js';
import type { AttestationStream } from '../../../../src/attestation/node/types.js';
import { parseConfigText } from '../../../../src/config/load.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { systemClock } from '../../../../src/clock.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { requireTool } from '../../../helpers/require-tool.js';
import { SSHTestCA, hasSshKeygen, type HostIdentity } from '../../../helpers/ssh-certs.js';

const skip = requireTool('ssh-keygen', hasSshKeygen(), 'apt-get install openssh-client');

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'sshpop', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.sshpop' });
const conf = (h: Pick<HostIdentity, 'keyPath' | 'certPath'>) => parseSshpopConfig(plugin({ host_key_path: h.keyPath, host_cert_path: h.certPath }));
const deps = { log: nullLogger, clock: systemClock };

/** A server side that records what it is sent and answers with a fresh sshpop challenge, then the result. */
function recordingServer(): AttestationStream & { sent: Uint8Array[]; nonce: Buffer } {
  const nonce = randomBytes(32);
  const sent: Uint8Array[] = [];
  return {
    sent,
    nonce,
    sendAttestationData: async (d) => (sent.push(d.payload), new TextEncoder().encode(JSON.stringify({ Nonce: nonce.toString('base64') }))),
    sendChallengeResponse: async (r) => (sent.push(r), undefined),
  };
}

/** The host key's public half from its .pub file, read without src/: ssh-keygen's own PKCS#8 export, or the raw ed25519 bytes. */
async function publicKeyOf(keyPath: string): Promise<KeyObject> {
  const line = await readFile(`${keyPath}.pub`, 'utf8');
  if (line.startsWith('ssh-ed25519 ')) {
    const blob = Buffer.from(line.split(' ')[1]!, 'base64');
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: blob.subarray(blob.length - 32).toString('base64url') }, format: 'jwk' });
  }
  const { execFileSync } = await import('node:child_process');
  return createPublicKey(execFileSync('ssh-keygen', ['-e', '-m', 'PKCS8', '-f', `${keyPath}.pub`], { encoding: 'utf8' }));
}

/** Verifies an SSH signature blob as Go's x/crypto/ssh does for the formats the agent sends. */
function verifySSH(pub: KeyObject, data: Uint8Array, format: string, blob: Buffer): boolean {
  if (format === 'ssh-ed25519') return verify(null, data, pub, blob);
  if (format === 'rsa-sha2-512') return verify('sha512', data, pub, blob);
  const size = { 'ecdsa-sha2-nistp256': 32, 'ecdsa-sha2-nistp384': 48 }[format]!;
  const ints: Buffer[] = [];
  for (let off = 0; off < blob.length; ) {
    const n = blob.readUInt32BE(off);
    const v = blob.subarray(off + 4, off + 4 + n);
    ints.push(Buffer.concat([Buffer.alloc(size), v.subarray(v[0] === 0 ? 1 : 0)]).subarray(-size));
    off += 4 + n;
  }
  return verify(size === 32 ? 'sha256' : 'sha384', data, { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.concat(ints));
}

describe.skipIf(skip)('sshpop', () => {
  let dir: string;
  let ca: SSHTestCA;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sshpop-'));
    ca = await SSHTestCA.create(dir);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each([
    ['ed25519', 'openssh', 'ssh-ed25519'],
    ['ecdsa', 'openssh', 'ecdsa-sha2-nistp256'],
    ['ecdsa-384', 'pem', 'ecdsa-sha2-nistp384'],
    ['ecdsa', 'pkcs8', 'ecdsa-sha2-nistp256'],
    ['rsa', 'openssh', 'rsa-sha2-512'],
    ['rsa', 'pem', 'rsa-sha2-512'],
  ] as const)('%s host key (%s file): sends the certificate, answers the nonce with a %s signature over SHA-256(nonce ‖ own)', async (type, format, sigFormat) => {
    const host = await ca.issue('node.example.org', { type, format });
    const att = await createSshpopAttestor(conf(host), deps);
    const server = recordingServer();
    await att.attest(server, new AbortController().signal);
    expect(server.sent).toHaveLength(2);
    const payload = JSON.parse(Buffer.from(server.sent[0]!).toString());
    expect(Object.keys(payload)).toEqual(['Certificate']);
    const certBlob = Buffer.from(payload.Certificate, 'base64');
    expect(certBlob.equals(Buffer.from((await readFile(host.certPath, 'utf8')).split(' ')[1]!, 'base64'))).toBe(true);
    expect(createHash('sha256').update(certBlob).digest('base64url')).toBe(host.fingerprint);
    const answer = JSON.parse(Buffer.from(server.sent[1]!).toString());
    expect(Object.keys(answer)).toEqual(['Nonce', 'Signature']);
    expect(Object.keys(answer.Signature)).toEqual(['Format', 'Blob', 'Rest']);
    expect(answer.Signature).toMatchObject({ Format: sigFormat, Rest: null });
    const own = Buffer.from(answer.Nonce, 'base64');
    expect(own).toHaveLength(32);
    const data = createHash('sha256').update(server.nonce).update(own).digest();
    expect(verifySSH(await publicKeyOf(host.keyPath), data, sigFormat, Buffer.from(answer.Signature.Blob, 'base64'))).toBe(true);
    expect(verifySSH(await publicKeyOf(host.keyPath), createHash('sha256').update(own).update(server.nonce).digest(), sigFormat, Buffer.from(answer.Signature.Blob, 'base64'))).toBe(false);
  });

  it('says what is wrong with the files, naming them, before the server is asked', async () => {
    const a = await ca.issue('a.example.org');
    const b = await ca.issue('b.example.org', { type: 'ecdsa' });
    const cases: [Pick<HostIdentity, 'keyPath' | 'certPath'>, RegExp][] = [
      [{ keyPath: a.keyPath, certPath: b.certPath }, /the host key in ".*a\.example\.org-\d+" \(ssh-ed25519 SHA256:.*\) does not match the key certified by ".*-cert\.pub" \(ecdsa-sha2-nistp256 SHA256:.*\); point host_key_path and host_cert_path at one host key and its certificate/],
      [{ keyPath: a.keyPath, certPath: `${a.keyPath}.pub` }, /host certificate ".*\.pub" holds a public key \(ssh-ed25519\), not a certificate; sign the host key with ssh-keygen -s/],
      [{ keyPath: a.certPath, certPath: a.certPath }, /host key ".*-cert\.pub" holds no PEM-armoured private key/],
      [{ keyPath: join(dir, 'missing'), certPath: a.certPath }, /unable to read host_key_path ".*missing"/],
    ];
    for (const [files, message] of cases) {
      await expect(createSshpopAttestor(conf(files), deps)).rejects.toThrow(expect.objectContaining({ code: 'node_attestor_config', message: expect.stringMatching(message) }));
    }
    const locked = await ca.issue('locked.example.org', { passphrase: 'secret' });
    await expect(createSshpopAttestor(conf(locked), deps)).rejects.toThrow(/host key ".*" is passphrase protected; sshpop needs the host key unencrypted/);
  });

  it('refuses at attestation a certificate the server would refuse: expired, not yet valid, a user certificate, no principals', async () => {
    const cases: [Parameters<SSHTestCA['issue']>[1], RegExp][] = [
      [{ validity: '20200101:20200102' }, /host certificate ".*" expired at 2020-01-02T00:00:00\.000Z; renew it/],
      [{ validity: '+1d:+2d' }, /host certificate ".*" is not valid until /],
      [{ user: true }, /host certificate ".*" is a user certificate, not a host certificate; sign the host key again with ssh-keygen -s <CA key> -h/],
      [{ principals: [] }, /host certificate ".*" names no principals/],
    ];
    for (const [o, message] of cases) {
      const h = await ca.issue('bad.example.org', o);
      // Loading works (a node resuming a stored SVID needs no valid certificate); attesting does not, and sends nothing.
      const att = await createSshpopAttestor(conf(h), deps);
      const server = recordingServer();
      await expect(att.attest(server, new AbortController().signal)).rejects.toThrow(expect.objectContaining({ code: 'node_attestor_config', message: expect.stringMatching(message) }));
      expect(server.sent).toHaveLength(0);
    }
  });

  it('judges validity by the clock the agent injects', async () => {
    const h = await ca.issue('clock.example.org', { validity: '-5m:+1h' });
    const plugins = [plugin({ host_key_path: h.keyPath, host_cert_path: h.certPath })];
    const late = new FakeClock(Date.now() + 2 * 3600_000);
    const att = await createNodeAttestor(plugins, {}, { log: nullLogger, clock: late, openTpm: noTpm });
    await expect(att.attest(recordingServer(), new AbortController().signal)).rejects.toThrow(/expired at/);
    const now = await createNodeAttestor(plugins, {}, { log: nullLogger, clock: new FakeClock(Date.now()), openTpm: noTpm });
    await expect(now.attest(recordingServer(), new AbortController().signal)).resolves.toBeUndefined();
  });

  it('validate reports a file problem under its key, with file and line', async () => {
    const h = await ca.issue('old.example.org', { validity: '20200101:20200102' });
    const text = `agent {\n  trust_domain = "example.org"\n}\nplugins {\n  NodeAttestor "sshpop" {\n    plugin_data {\n      host_key_path = "${h.keyPath}"\n      host_cert_path = "${h.certPath}"\n    }\n  }\n}\n`;
    const config = await parseConfigText(text, '/etc/agent.conf', { expandEnv: false });
    await expect(checkNodeAttestorConfig(config.plugins[0]!, { file: '/etc/agent.conf', text }, systemClock)).rejects.toThrow(
      /\/etc\/agent\.conf:8: plugins\.NodeAttestor\.sshpop\.plugin_data\.host_cert_path: host certificate ".*" expired at 2020-01-02/,
    );
    const good = await ca.issue('ok.example.org');
    await expect(checkNodeAttestorConfig(plugin({ host_key_path: good.keyPath, host_cert_path: good.certPath }), {}, systemClock)).resolves.toBeUndefined();
    // The default paths are spire-agent's; an empty value means the default, as there.
    expect(parseSshpopConfig(plugin({}))).toEqual({ hostKeyPath: '/etc/ssh/ssh_host_rsa_key', hostCertPath: '/etc/ssh/ssh_host_rsa_key-cert.pub' });
    expect(parseSshpopConfig(plugin({ host_key_path: '' })).hostKeyPath).toBe('/etc/ssh/ssh_host_rsa_key');
    expect(() => parseSshpopConfig(plugin({ host_cert: '/x' }))).toThrow(/plugin_data\.host_cert: unknown key/);
  });

  it('a challenge without a 32-byte nonce, or a second challenge, is refused', async () => {
    const h = await ca.issue('chal.example.org');
    const { key } = await loadSshpopMaterial(conf(h));
    expect(() => respond(key, new TextEncoder().encode('{"Nonce":"AAAA"}'))).toThrow(expect.objectContaining({ code: 'node_attestor_challenge', message: expect.stringMatching(/invalid challenge nonce size/) }));
    expect(() => respond(key, new TextEncoder().encode('nope'))).toThrow(/failed to unmarshal challenge request/);
    // Go decodes JSON keys case-insensitively.
    expect(JSON.parse(Buffer.from(respond(key, new TextEncoder().encode(JSON.stringify({ nonce: randomBytes(32).toString('base64') })))).toString()).Nonce).toBeTruthy();
    const att = await createSshpopAttestor(conf(h), deps);
    const twice: AttestationStream = { ...recordingServer(), sendChallengeResponse: async () => new Uint8Array([1]) };
    await expect(att.attest(twice, new AbortController().signal)).rejects.toThrow(expect.objectContaining({ code: 'node_attestor_unexpected_challenge' }));
  });

  it('reads the files again at each attestation, so a renewed certificate is used without a restart', async () => {
    const h = await ca.issue('renew.example.org', { validity: '20200101:20200102' });
    const att = await createSshpopAttestor(conf(h), deps);
    await expect(att.attest(recordingServer(), new AbortController().signal)).rejects.toThrow(/expired/);
    const renewed = await ca.certify(h.keyPath, 'renew.example.org');
    const server = recordingServer();
    await att.attest(server, new AbortController().signal);
    expect(createHash('sha256').update(Buffer.from(JSON.parse(Buffer.from(server.sent[0]!).toString()).Certificate, 'base64')).digest('base64url')).toBe(renewed.fingerprint);
    await writeFile(h.certPath, 'garbage\n');
    await expect(att.attest(recordingServer(), new AbortController().signal)).rejects.toThrow(/is not an OpenSSH certificate/);
  });
});
