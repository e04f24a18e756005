/**
 * tpm_devid without a TPM: plugin_data as spire-agent reads it, the DevID files (and the size
 * prefix trap), the JSON exchanged with spire-server byte for byte, and the messages an operator
 * gets. The exchange itself runs against swtpm in test/integration/tpm-devid.test.ts and against
 * spire-server in test/interop/server/tpm-devid.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkNodeAttestorConfig, createNodeAttestor } from '../../../../src/attestation/node/catalog.js';
import { parseTpmDevidConfig } from '../../../../src/attestation/node/tpm_devid/config.js';
import { createTpmDevidAttestor, loadDevIDMaterial, resolveDevicePath } from '../../../../src/attestation/node/tpm_devid/index.js';
import { derElementLength, explainTpmError } from '../../../../src/attestation/node/tpm_devid/session.js';
import { encodeAttestationRequest, encodeChallengeResponse, parseChallengeRequest } from '../../../../src/attestation/node/tpm_devid/wire.js';
import { systemClock } from '../../../../src/clock.js';
import { parseConfigText } from '../../../../src/config/load.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { CC, RC, RH, TpmError } from '../../../../src/tpm/index.js';
import { commandError } from '../../../../src/tpm/explain.js';
import { password } from '../../../../src/tpm/wire.js';
import { noTpm } from '../../../helpers/no-tpm.js';
import { requireTool } from '../../../helpers/require-tool.js';
import { ALG, hasOpenssl, writeDevIDFiles, type DevIDFiles } from '../../../helpers/tpm/devid-files.js';

const skip = requireTool('openssl', hasOpenssl(), 'apt-get install openssl');

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'tpm_devid', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.tpm_devid' });
const filesData = (f: Pick<DevIDFiles, 'certPath' | 'pubPath' | 'privPath'>) => ({ devid_cert_path: f.certPath, devid_pub_path: f.pubPath, devid_priv_path: f.privPath });
const conf = (f: DevIDFiles, extra: Record<string, unknown> = {}) => parseTpmDevidConfig(plugin({ ...filesData(f), ...extra }));
const enc = (s: string) => new TextEncoder().encode(s);

describe('tpm_devid plugin_data', () => {
  it('reads spire-agent keys; passwords default to empty and an empty tpm_device_path means auto-detection', () => {
    const c = parseTpmDevidConfig(plugin({ devid_cert_path: '/c', devid_pub_path: '/p', devid_priv_path: '/k', tpm_device_path: '', owner_hierarchy_password: 'o' }));
    expect(c).toEqual({ devicePath: undefined, devIDCertPath: '/c', devIDPubPath: '/p', devIDPrivPath: '/k', passwords: { devID: '', ownerHierarchy: 'o', endorsementHierarchy: '' } });
    expect(parseTpmDevidConfig(plugin({ devid_cert_path: '/c', devid_pub_path: '/p', devid_priv_path: '/k', tpm_device_path: '/dev/tpmrm1' })).devicePath).toBe('/dev/tpmrm1');
  });

  it('names every missing required key, as spire-agent words it', () => {
    expect(() => parseTpmDevidConfig(plugin({}))).toThrow(/devid_cert_path is required[\s\S]*devid_priv_path is required[\s\S]*devid_pub_path is required/);
  });

  it('refuses an unknown key with file and line', async () => {
    const text = 'agent {\n  trust_domain = "example.org"\n}\nplugins {\n  NodeAttestor "tpm_devid" {\n    plugin_data {\n      devid_cert_path = "/c"\n      devid_pub_path = "/p"\n      devid_priv_path = "/k"\n      devid_pasword = "x"\n    }\n  }\n}\n';
    const config = await parseConfigText(text, '/etc/agent.conf', { expandEnv: false });
    expect(() => parseTpmDevidConfig(config.plugins[0]!, { file: '/etc/agent.conf', text })).toThrow(/\/etc\/agent\.conf:10: plugins\.NodeAttestor\.tpm_devid\.plugin_data\.devid_pasword: unknown key/);
  });

  it('does not quote a password of the wrong type back', () => {
    let message = '';
    try {
      parseTpmDevidConfig(plugin({ devid_cert_path: '/c', devid_pub_path: '/p', devid_priv_path: '/k', devid_password: ['hunter2'] }));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/devid_password: expected a string \(the value is not shown: it is a password\)/);
    expect(message).not.toContain('hunter2');
  });
});

describe('tpm_devid JSON, as Go encodes pkg/common/plugin/tpmdevid', () => {
  it('writes the payload with Go field names, in declaration order, standard base64', () => {
    const b = (n: number, len: number) => Buffer.alloc(len, n);
    const json = Buffer.from(
      encodeAttestationRequest({ devIDCert: [b(1, 3), b(2, 2)], devIDPub: b(3, 1), ekCert: b(4, 4), ekPub: b(0xfb, 2), akPub: b(0xff, 3), certifiedDevID: b(7, 1), certificationSignature: b(8, 2) }),
    ).toString();
    // What json.Marshal(AttestationRequest{...}) gives for the same bytes.
    expect(json).toBe('{"DevIDCert":["AQEB","AgI="],"DevIDPub":"Aw==","EKCert":"BAQEBA==","EKPub":"+/s=","AKPub":"////","CertifiedDevID":"Bw==","CertificationSignature":"CAg="}');
  });

  it('writes the answer as {"DevID": signature, "CredActivation": secret}', () => {
    expect(Buffer.from(encodeChallengeResponse(Buffer.from([1, 2, 3]), Buffer.from([0xfe]))).toString()).toBe('{"DevID":"AQID","CredActivation":"/g=="}');
  });

  it('reads the server challenge, matching field names case-insensitively as Go does', () => {
    const c = parseChallengeRequest(enc('{"DevID":"AAEC","CredActivation":{"Credential":"AwQ=","Secret":"BQ=="}}'));
    expect(c).toEqual({ devID: Buffer.from([0, 1, 2]), credActivation: { credential: Buffer.from([3, 4]), secret: Buffer.from([5]) } });
    expect(parseChallengeRequest(enc('{"devid":"AAEC","credactivation":{"credential":"AwQ=","SECRET":"BQ=="}}'))).toEqual(c);
  });

  it.each([
    ['not JSON', 'nope', /unable to unmarshal challenges: /],
    ['no credential activation', '{"DevID":"AAEC","CredActivation":null}', /received empty credential activation challenge from server/],
    ['no nonce', '{"CredActivation":{"Credential":"AwQ=","Secret":"BQ=="}}', /DevID proof-of-possession nonce is empty/],
    ['URL-safe base64', '{"DevID":"-_8=","CredActivation":{"Credential":"AwQ=","Secret":"BQ=="}}', /DevID is not standard base64/],
    ['an empty secret', '{"DevID":"AAEC","CredActivation":{"Credential":"AwQ=","Secret":""}}', /empty Credential or Secret/],
  ])('refuses a challenge with %s', (_what, text, message) => {
    expect(() => parseChallengeRequest(enc(text))).toThrow(expect.objectContaining({ code: 'tpm_devid_challenge', message: expect.stringMatching(message) }));
  });
});

describe('tpm_devid errors from the TPM', () => {
  const spec = (handles: { handle: number; label: string; auth?: ReturnType<typeof password> }[]) => ({ cc: CC.CreatePrimary, handles, params: Buffer.alloc(0), responseHandles: 1 as const });

  it('a refused hierarchy password names the setting; other TPM failures keep the TPM reason', () => {
    const authFail = commandError(spec([{ handle: RH.OWNER, label: 'owner hierarchy', auth: password('x') }]), RC.AUTH_FAIL + 0x100);
    const e = explainTpmError(authFail, 'cannot load the DevID key', 'owner_hierarchy_password') as Error & { code: string };
    expect(e.code).toBe('tpm_devid_auth');
    expect(e.message).toMatch(/^nodeattestor\(tpm_devid\): cannot load the DevID key: the TPM refused owner_hierarchy_password \(check it in the tpm_devid plugin_data\): tpm: TPM2_CreatePrimary: owner hierarchy password is wrong/);
    const memory = explainTpmError(commandError(spec([]), RC.OBJECT_MEMORY), 'cannot create the attestation key') as Error & { code: string };
    expect(memory).toMatchObject({ code: 'tpm_devid_tpm', message: expect.stringMatching(/cannot create the attestation key: tpm: TPM2_CreatePrimary: .*flush them/) });
    const plain = new Error('not the TPM');
    expect(explainTpmError(plain, 'x')).toBe(plain);
  });

  it('cuts the EK certificate at the end of its DER element, as spire-agent does with trailing bytes', () => {
    const der = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(0x100, 7)]);
    expect(derElementLength(Buffer.concat([der, Buffer.alloc(20, 0xff)]))).toBe(der.length);
    expect(derElementLength(Buffer.from([0x30, 0x05, 1, 2]))).toBeUndefined();
    expect(derElementLength(Buffer.from([0x30, 0x02, 1, 2]))).toBe(4);
  });

  it('an unreachable TPM names the path and whether it was configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tpm-devid-open-'));
    try {
      const f = writeDevIDFiles(dir, 'devid');
      const openTpm = () => Promise.reject(new TpmError('tpm_device_not_found', 'tpm: cannot use /nope: ENOENT'));
      const att = await createTpmDevidAttestor(conf(f, { tpm_device_path: '/nope' }), { log: nullLogger, clock: systemClock, openTpm });
      const stream = { sendAttestationData: () => Promise.reject(new Error('not reached')), sendChallengeResponse: () => Promise.reject(new Error('not reached')) };
      await expect(att.attest(stream, new AbortController().signal)).rejects.toThrow(
        expect.objectContaining({ code: 'tpm_devid_no_tpm', message: 'nodeattestor(tpm_devid): no TPM device at "/nope" (tpm_device_path): tpm: cannot use /nope: ENOENT' }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tpm_devid device auto-detection, as spire-agent picks the device', () => {
  let dev: string;
  beforeAll(() => {
    dev = mkdtempSync(join(tmpdir(), 'tpm-devid-dev-'));
  });
  afterAll(() => rmSync(dev, { recursive: true, force: true }));

  const devDir = (names: string[]) => {
    const d = mkdtempSync(join(dev, 'd-'));
    for (const n of names) writeFileSync(join(d, n), '');
    return d;
  };

  it('takes the one tpmrm<N> over tpm<N>, else the one tpm<N>; a configured path is used as is', async () => {
    const d = devDir(['tpm0', 'tpmrm0', 'null']);
    expect(await resolveDevicePath(undefined, d)).toBe(join(d, 'tpmrm0'));
    const only = devDir(['tpm0', 'tty']);
    expect(await resolveDevicePath(undefined, only)).toBe(join(only, 'tpm0'));
    expect(await resolveDevicePath('/run/swtpm.sock', only)).toBe('/run/swtpm.sock');
  });

  it('says where it looked and for what when there is none, and refuses to guess between two', async () => {
    const none = devDir(['null', 'tty0']);
    await expect(resolveDevicePath(undefined, none)).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_no_tpm', message: expect.stringMatching(new RegExp(`tpm autodetection failed \\(tpm_device_path is not set, so ${none} was searched for tpmrm<N>, then tpm<N>\\): .*set tpm_device_path`)) }),
    );
    await expect(resolveDevicePath(undefined, devDir(['tpmrm0', 'tpmrm1']))).rejects.toThrow(/more than one possible TPM .*tpmrm0, tpmrm1/);
  });

  it('detects at start (spire-agent detects at Configure), before any TPM is opened', async () => {
    const none = devDir([]);
    await expect(createTpmDevidAttestor(parseTpmDevidConfig(plugin({ devid_cert_path: '/c', devid_pub_path: '/p', devid_priv_path: '/k' })), { log: nullLogger, clock: systemClock, openTpm: noTpm, devDir: none })).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_no_tpm' }),
    );
  });
});

describe.skipIf(skip)('tpm_devid DevID files', () => {
  let dir: string;
  let rsa: DevIDFiles;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tpm-devid-files-'));
    rsa = writeDevIDFiles(dir, 'rsa');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a certificate chain and the key blobs, and sends the public blob as read', async () => {
    const m = await loadDevIDMaterial(conf(rsa));
    expect(m.pub.bytes.equals(rsa.pubBytes)).toBe(true);
    expect(m.certificates).toHaveLength(1);
    expect(m.signHash).toBe(ALG.SHA256);
    const ecc = writeDevIDFiles(dir, 'ecc', { type: 'ecc' });
    expect((await loadDevIDMaterial(conf(ecc))).pub.area.type).toBe(ALG.ECC);
  });

  it('recognises the 2-byte size prefix tpm2_create writes, in either blob, and says how to strip it', async () => {
    const pub2b = join(dir, 'pub.tpm2b');
    writeFileSync(pub2b, Buffer.concat([Buffer.from([rsa.pubBytes.length >> 8, rsa.pubBytes.length & 0xff]), rsa.pubBytes]));
    await expect(loadDevIDMaterial(conf(rsa, { devid_pub_path: pub2b }))).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_files', message: expect.stringMatching(/devid_pub_path ".*pub.tpm2b" is a TPM2B_PUBLIC \(it starts with its own size\); spire-agent reads it without the 2-byte size prefix tpm2_create writes; strip it \(tail -c \+3/) }),
    );
    const priv2b = join(dir, 'priv.tpm2b');
    writeFileSync(priv2b, Buffer.concat([Buffer.from([0, 224]), Buffer.from([0, 32]), Buffer.alloc(222, 9)]));
    await expect(loadDevIDMaterial(conf(rsa, { devid_priv_path: priv2b }))).rejects.toThrow(/devid_priv_path ".*priv.tpm2b" is a TPM2B_PRIVATE .*tail -c \+3/);
  });

  it('refuses a certificate that is not for the key in the public blob, naming both files', async () => {
    const other = writeDevIDFiles(dir, 'other');
    await expect(loadDevIDMaterial(conf(rsa, { devid_cert_path: other.certPath }))).rejects.toThrow(
      expect.objectContaining({ code: 'tpm_devid_files', message: expect.stringMatching(/the DevID certificate in devid_cert_path ".*other.pem" \(subject "CN=other"\) is not for the key in devid_pub_path ".*rsa_pub.bin"/) }),
    );
  });

  it.each([
    ['a missing file', { devid_priv_path: '/nonexistent/devid_priv.bin' }, /cannot read devid_priv_path "\/nonexistent\/devid_priv.bin": .*ENOENT/],
    ['a directory', { devid_pub_path: '/tmp' }, /cannot read devid_pub_path "\/tmp": not a regular file/],
  ])('names the file for %s', async (_what, override, message) => {
    await expect(loadDevIDMaterial(conf(rsa, override))).rejects.toThrow(expect.objectContaining({ code: 'tpm_devid_files', message: expect.stringMatching(message) }));
  });

  it('refuses a public blob that is not a TPMT_PUBLIC, a key that cannot sign, and a scheme the server cannot verify', async () => {
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, Buffer.from([0x00, 0x01, 0x00]));
    await expect(loadDevIDMaterial(conf(rsa, { devid_pub_path: junk }))).rejects.toThrow(/devid_pub_path ".*junk.bin" is not a TPMT_PUBLIC/);
    const noSign = writeDevIDFiles(dir, 'nosign', { area: (a) => ({ ...a, attributes: a.attributes & ~0x40000 }) });
    await expect(loadDevIDMaterial(conf(noSign))).rejects.toThrow(/is not a signing key/);
    const sha384 = writeDevIDFiles(dir, 'sha384', { area: (a) => ({ ...a, scheme: { scheme: ALG.RSASSA, hash: ALG.SHA384 } }) as typeof a });
    await expect(loadDevIDMaterial(conf(sha384))).rejects.toThrow(/spire-server checks the DevID proof of possession as RSASSA with SHA-256/);
    const nullScheme = writeDevIDFiles(dir, 'null', { area: (a) => ({ ...a, scheme: { scheme: ALG.NULL, hash: ALG.NULL } }) as typeof a });
    await expect(loadDevIDMaterial(conf(nullScheme))).rejects.toThrow(/has no signing scheme/);
  });

  it('validate reports a file problem under its key, with file and line, and opens no TPM', async () => {
    const other = writeDevIDFiles(dir, 'other2');
    const text = `agent {\n  trust_domain = "example.org"\n}\nplugins {\n  NodeAttestor "tpm_devid" {\n    plugin_data {\n      tpm_device_path = "/nonexistent/tpm"\n      devid_cert_path = "${other.certPath}"\n      devid_pub_path = "${rsa.pubPath}"\n      devid_priv_path = "${rsa.privPath}"\n    }\n  }\n}\n`;
    const config = await parseConfigText(text, '/etc/agent.conf', { expandEnv: false });
    await expect(checkNodeAttestorConfig(config.plugins[0]!, { file: '/etc/agent.conf', text }, systemClock)).rejects.toThrow(
      /\/etc\/agent\.conf:8: plugins\.NodeAttestor\.tpm_devid\.plugin_data\.devid_cert_path: the DevID certificate in devid_cert_path .* is not for the key in devid_pub_path/,
    );
    await expect(checkNodeAttestorConfig(plugin({ ...filesData(rsa), tpm_device_path: '/nonexistent/tpm' }), {}, systemClock)).resolves.toBeUndefined();
  });

  it('is built by the catalog from agent.conf, with the injected TPM opener', async () => {
    const sock = join(dir, 'sock-dir');
    mkdirSync(sock, { recursive: true });
    const att = await createNodeAttestor([plugin({ ...filesData(rsa), tpm_device_path: join(sock, 'tpm.sock') })], {}, { log: nullLogger, clock: systemClock, openTpm: noTpm });
    expect(att.name).toBe('tpm_devid');
    await expect(att.attest({ sendAttestationData: async () => undefined, sendChallengeResponse: async () => undefined }, new AbortController().signal)).rejects.toThrow(/this test opens no TPM/);
  });
});
