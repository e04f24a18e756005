/**
 * tpm_devid against a real software TPM (swtpm, provisioned by scripts/swtpm.sh with an EK
 * certificate from swtpm-localca and a DevID key and certificate from a test CA, as spire-agent
 * expects them): the whole exchange against a verifier that checks what spire-server checks, the
 * TPM's slots left as found, and the refusals an operator gets from the TPM itself.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTpmDevidConfig } from '../../src/attestation/node/tpm_devid/config.js';
import { createTpmDevidAttestor } from '../../src/attestation/node/tpm_devid/index.js';
import type { PluginConfig } from '../../src/config/types.js';
import { systemClock } from '../../src/clock.js';
import { nullLogger } from '../../src/telemetry/logger.js';
import { openTpm } from '../../src/tpm/open-tpm.js';
import { requireTool } from '../helpers/require-tool.js';
import { DevIDVerifier } from '../helpers/tpm/devid-verifier.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../helpers/tpm/swtpm.js';

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);
const run = promisify(execFile);

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'tpm_devid', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.tpm_devid' });

function dataFor(t: Swtpm, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tpm_device_path: t.socket,
    devid_cert_path: join(t.template, 'devid.pem'),
    devid_pub_path: join(t.template, 'devid_pub.bin'),
    devid_priv_path: join(t.template, 'devid_priv.bin'),
    devid_password: t.devidPassword,
    ...extra,
  };
}

async function attestor(t: Swtpm, extra: Record<string, unknown> = {}) {
  return createTpmDevidAttestor(parseTpmDevidConfig(plugin(dataFor(t, extra))), { log: nullLogger, clock: systemClock, openTpm });
}

describe.skipIf(skip)('tpm_devid with swtpm', () => {
  let tpm: Swtpm;
  let verifier: DevIDVerifier;
  beforeAll(async () => {
    tpm = await Swtpm.start();
    verifier = new DevIDVerifier(tpm.file('devid-ca.pem').toString(), tpm.file('ek-ca.pem').toString());
  }, 180_000);
  afterAll(() => tpm?.stop());

  it('completes the exchange a spire-server verifies, with the agent ID and selectors it would give', async () => {
    const att = await attestor(tpm);
    const stream = verifier.stream();
    await att.attest(stream, new AbortController().signal);
    const r = await stream.result;
    const { createHash, X509Certificate } = await import('node:crypto');
    const leaf = new X509Certificate(tpm.file('devid.pem'));
    const ca = new X509Certificate(tpm.file('devid-ca.pem'));
    expect(r.agentPath).toBe(`/spire/agent/tpm_devid/${createHash('sha1').update(leaf.raw).digest('hex')}`);
    expect(r.selectors).toEqual(['subject:cn:spiffe-agent test DevID', 'issuer:cn:spiffe-agent test DevID CA', `ca:fingerprint:${createHash('sha1').update(ca.raw).digest('hex')}`]);
    // The payload carries the files' bytes as read, and the EK certificate as the TPM holds it.
    expect(Buffer.from(verifier.payload!['DevIDPub'] as string, 'base64').equals(tpm.file('devid_pub.bin'))).toBe(true);
    const nvCert = await tpm.tool('tpm2_nvread', ['0x01c00002']);
    expect(nvCert.subarray(0, Buffer.from(verifier.payload!['EKCert'] as string, 'base64').length).equals(Buffer.from(verifier.payload!['EKCert'] as string, 'base64'))).toBe(true);
  }, 120_000);

  it('leaves no object or session loaded, so the next attestation (ours or spire-agent\'s) finds the three slots free', async () => {
    const before = await tpm.loaded();
    for (let i = 0; i < 3; i++) {
      const stream = verifier.stream();
      await (await attestor(tpm)).attest(stream, new AbortController().signal);
      await stream.result;
    }
    expect(await tpm.loaded()).toEqual(before);
    expect(before).toEqual([]);
  }, 180_000);

  it('a server that refuses the payload leaves the TPM as found', async () => {
    const refusing = { sendAttestationData: () => Promise.reject(new Error('unable to verify DevID signature')), sendChallengeResponse: () => Promise.reject(new Error('not reached')) };
    await expect((await attestor(tpm)).attest(refusing, new AbortController().signal)).rejects.toThrow(/unable to verify DevID signature/);
    expect(await tpm.loaded()).toEqual([]);
  }, 120_000);

  it('a refused answer (the server sent a credential for another TPM) still leaves the TPM as found', async () => {
    const stream = verifier.stream();
    const bad = { ...stream, sendAttestationData: async (d: Parameters<typeof stream.sendAttestationData>[0]) => {
      const c = JSON.parse(Buffer.from((await stream.sendAttestationData(d))!).toString());
      const secret = Buffer.from(c.CredActivation.Secret, 'base64');
      secret[10] = secret[10]! ^ 0xff;
      c.CredActivation.Secret = secret.toString('base64');
      return Buffer.from(JSON.stringify(c));
    } };
    await expect((await attestor(tpm)).attest(bad, new AbortController().signal)).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_tpm', message: expect.stringMatching(/unable to solve proof of residency challenge .*TPM2_ActivateCredential/) }),
    );
    expect(await tpm.loaded()).toEqual([]);
  }, 120_000);
});

describe.skipIf(skip)('tpm_devid with an ECC DevID key', () => {
  let t: Swtpm;
  let dir: string;
  beforeAll(async () => {
    t = await Swtpm.start();
    dir = mkdtempSync(join(tmpdir(), 'tpm-devid-ecc-'));
  }, 180_000);
  afterAll(async () => {
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads under the ECC SRK (template H-2) and answers the nonce with an ECDSA signature the server verifies', async () => {
    // Provisioned with tpm2-tools, as an operator would, and certified by the same test DevID CA.
    await t.tool('tpm2_createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda', '-c', 'srk.ctx'], dir);
    await t.tool('tpm2_create', ['-Q', '-C', 'srk.ctx', '-g', 'sha256', '-G', 'ecc256:ecdsa-sha256:null', '-p', 'ecc-pass', '-a', 'sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', 'k.pub', '-r', 'k.priv'], dir);
    await t.tool('tpm2_flushcontext', ['-t']);
    const pem = await t.tool('tpm2_print', ['-t', 'TPM2B_PUBLIC', '-f', 'pem', 'k.pub'], dir);
    writeFileSync(join(dir, 'k.pem'), pem);
    await run('openssl', ['x509', '-new', '-force_pubkey', join(dir, 'k.pem'), '-CA', join(t.template, 'devid-ca.pem'), '-CAkey', join(t.template, 'devid-ca.key'), '-subj', '/CN=ecc devid', '-days', '1', '-out', join(dir, 'ecc.pem')]);
    const { readFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'pub.bin'), readFileSync(join(dir, 'k.pub')).subarray(2));
    writeFileSync(join(dir, 'priv.bin'), readFileSync(join(dir, 'k.priv')).subarray(2));
    const stream = new DevIDVerifier(t.file('devid-ca.pem').toString(), t.file('ek-ca.pem').toString()).stream();
    const att = await attestor(t, { devid_cert_path: join(dir, 'ecc.pem'), devid_pub_path: join(dir, 'pub.bin'), devid_priv_path: join(dir, 'priv.bin'), devid_password: 'ecc-pass' });
    await att.attest(stream, new AbortController().signal);
    expect((await stream.result).selectors[0]).toBe('subject:cn:ecc devid');
    expect(await t.loaded()).toEqual([]);
  }, 180_000);
});

describe.skipIf(skip)('tpm_devid refusals from swtpm', () => {
  // Each case gets its own TPM: a wrong key password counts toward dictionary-attack lockout.
  const started: Swtpm[] = [];
  const fresh = async () => {
    const t = await Swtpm.start();
    started.push(t);
    return t;
  };
  afterAll(() => Promise.all(started.map((t) => t.stop())));
  const never = { sendAttestationData: () => Promise.reject(new Error('must fail before sending')), sendChallengeResponse: () => Promise.reject(new Error('not reached')) };

  it('a wrong devid_password is named, with the lockout warning, and never logged or echoed', async () => {
    const t = await fresh();
    const err = await (await attestor(t, { devid_password: 'not-the-password' })).attest(never, new AbortController().signal).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'tpm_devid_auth', message: expect.stringMatching(/cannot certify the DevID key with the attestation key: the TPM refused devid_password \(check it in the tpm_devid plugin_data\): tpm: TPM2_Certify: the password of DevID key is wrong\. The failure counted toward the dictionary-attack lockout/) });
    expect((err as Error).message).not.toContain('not-the-password');
    expect(await t.loaded()).toEqual([]);
  }, 180_000);

  it('wrong owner and endorsement hierarchy passwords are named', async () => {
    const t = await fresh();
    await expect((await attestor(t, { owner_hierarchy_password: 'wrong' })).attest(never, new AbortController().signal)).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_auth', message: expect.stringMatching(/cannot load the DevID key: cannot create the storage root key \(owner hierarchy\): the TPM refused owner_hierarchy_password .*owner hierarchy password is wrong/) }),
    );
    await expect((await attestor(t, { endorsement_hierarchy_password: 'wrong' })).attest(never, new AbortController().signal)).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_auth', message: expect.stringMatching(/cannot create the endorsement key \(endorsement hierarchy\): the TPM refused endorsement_hierarchy_password .*endorsement hierarchy password is wrong/) }),
    );
    // A password the TPM has is used: set one on the owner hierarchy and configure it.
    await t.tool('tpm2_changeauth', ['-c', 'o', 'owner-secret']);
    const stream = new DevIDVerifier(t.file('devid-ca.pem').toString(), t.file('ek-ca.pem').toString()).stream();
    await (await attestor(t, { owner_hierarchy_password: 'owner-secret' })).attest(stream, new AbortController().signal);
    await stream.result;
    expect(await t.loaded()).toEqual([]);
  }, 240_000);

  it('a TPM without an EK certificate at 0x01c00002 is named as such', async () => {
    const t = await fresh();
    await t.tool('tpm2_nvundefine', ['-C', 'p', '0x01c00002']);
    await expect((await attestor(t)).attest(never, new AbortController().signal)).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_ek_cert_missing', message: expect.stringMatching(/no EK certificate in the TPM \(.*tpm\.sock \(socket\)\): NV index 0x01c00002 is not defined/) }),
    );
    expect(await t.loaded()).toEqual([]);
  }, 180_000);

  it('DevID blobs from another TPM are refused at TPM2_Load, saying so', async () => {
    const t = await fresh();
    const dir = mkdtempSync(join(tmpdir(), 'tpm-devid-other-'));
    try {
      // A key created under this TPM's SRK, then loaded into another: its blob does not decrypt.
      const other = await fresh();
      await other.tool('tpm2_createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'rsa2048:null:aes128cfb', '-a', 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda', '-c', 'srk.ctx'], dir);
      await other.tool('tpm2_create', ['-Q', '-C', 'srk.ctx', '-g', 'sha256', '-G', 'rsa2048:rsassa-sha256:null', '-a', 'sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', 'k.pub', '-r', 'k.priv'], dir);
      await other.tool('tpm2_flushcontext', ['-t']);
      const { readFileSync } = await import('node:fs');
      writeFileSync(join(dir, 'priv.bin'), readFileSync(join(dir, 'k.priv')).subarray(2));
      // Keep this TPM's own public blob and certificate: only the private blob is foreign.
      const err = await (await attestor(t, { devid_priv_path: join(dir, 'priv.bin') })).attest(never, new AbortController().signal).catch((e: Error) => e);
      expect(err).toMatchObject({ code: 'tpm_devid_tpm', message: expect.stringMatching(/cannot load the DevID key \(devid_pub_path, devid_priv_path\) under the storage root key.*TPM2_Load/) });
      expect(await t.loaded()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);

  it('a configured path with no TPM behind it is named', async () => {
    const t = await fresh();
    await expect((await attestor(t, { tpm_device_path: join(t.dir, 'nothing.sock') })).attest(never, new AbortController().signal)).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_no_tpm', message: expect.stringMatching(/no TPM device at ".*nothing\.sock" \(tpm_device_path\): tpm: cannot use/) }),
    );
  }, 120_000);
});
