/**
 * CreatePrimary, Create, Load and ReadPublic against a real software TPM (swtpm), checked with
 * tpm2-tools rather than with our own encoder: the same template must give the key tpm2-tools
 * makes, and the public area we read must be the bytes tpm2_readpublic writes.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createPrimary,
  ekTemplateRSA,
  load,
  objectName,
  parsePublic,
  policySecretDigest,
  publicBytes,
  publicKeyOf,
  readPublic,
  RH,
  srkTemplateHighRSA,
  type TpmClient,
} from '../../../src/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);

/** "name: 000b..." from tpm2_readpublic / tpm2_createprimary output. */
function nameFrom(yaml: Buffer): string {
  return /^name: ([0-9a-f]+)$/m.exec(yaml.toString())![1]!;
}

describe.skipIf(skip)('TPM objects on swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;
  let work: string;

  beforeAll(async () => {
    tpm = await Swtpm.start();
    work = mkdtempSync(join(tmpdir(), 'tpm-objects-'));
  });
  afterAll(async () => {
    await tpm?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  afterEach(async () => {
    await client?.close();
    expect(await tpm.loaded(), 'the client left objects in the TPM').toEqual([]);
  });

  it("creates spire-agent's SRK: the key tpm2_createprimary makes from the same template", async () => {
    client = await tpm.open();
    const ours = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    await client.flush(ours.handle);
    await tpm.tool('tpm2_createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'rsa2048:null:aes128cfb', '-a', 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda', '-c', join(work, 'srk.ctx')]);
    const out = await tpm.tool('tpm2_readpublic', ['-c', join(work, 'srk.ctx')]);
    await tpm.tool('tpm2_flushcontext', ['-t']);
    expect(ours.name.toString('hex')).toBe(nameFrom(out));
    expect(objectName(ours.public).equals(ours.name), 'our Name computation agrees with the TPM').toBe(true);
  });

  it('reads back the public area byte for byte as tpm2_readpublic writes it', async () => {
    client = await tpm.open();
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    const pubFile = join(work, 'srk.pub');
    const yaml = await tpm.tool('tpm2_readpublic', ['-c', `0x${srk.handle.toString(16)}`, '-o', pubFile]);
    const theirs = readFileSync(pubFile).subarray(2); // TPM2B_PUBLIC: drop the size
    const ours = await readPublic(client, srk.handle, 'SRK');
    expect(ours.public.bytes.toString('hex')).toBe(theirs.toString('hex'));
    expect(ours.name.toString('hex')).toBe(nameFrom(yaml));
    expect(publicBytes(ours.public.area).equals(theirs), 'decoding then encoding gives the same bytes').toBe(true);
    expect(ours.public.area).toMatchObject({ keyBits: 2048, exponent: 0 });
  });

  it('creates the default RSA EK: the one swtpm_setup made, whose certificate is in NV 0x01c00002', async () => {
    client = await tpm.open();
    const ek = await createPrimary(client, { hierarchy: RH.ENDORSEMENT, template: ekTemplateRSA() });
    const persistent = await tpm.tool('tpm2_readpublic', ['-c', '0x81010001']);
    expect(ek.name.toString('hex')).toBe(nameFrom(persistent));
    const cert = new X509Certificate(await tpm.tool('tpm2_nvread', ['0x01c00002', '-C', 'o']).then((b) => b.subarray(0, derLength(b))));
    expect(publicKeyOf(ek.public.area).export({ format: 'jwk' })).toEqual(cert.publicKey.export({ format: 'jwk' }));
  });

  it("the EK template's authPolicy is the EK Credential Profile's PolicySecret(TPM_RH_ENDORSEMENT) digest", () => {
    // Published in the TCG EK Credential Profile, template L-1.
    expect(policySecretDigest(RH.ENDORSEMENT).toString('hex')).toBe('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
  });

  it("loads the DevID blobs as spire-agent's devid_pub_path/devid_priv_path hold them, under the SRK", async () => {
    client = await tpm.open();
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA(), userAuth: 'srk-password' });
    const pub = tpm.file('devid_pub.bin');
    const devid = await load(client, { parent: srk.handle, parentAuth: 'srk-password', parentLabel: 'SRK', private: tpm.file('devid_priv.bin'), public: pub });
    await client.flush(srk.handle);
    expect(devid.name.equals(objectName(parsePublic(pub))), "the TPM's Name for the key is the one we compute from devid_pub.bin").toBe(true);
    const yaml = await tpm.tool('tpm2_readpublic', ['-c', `0x${devid.handle.toString(16)}`]);
    expect(devid.name.toString('hex')).toBe(nameFrom(yaml));
    expect(client.liveHandles).toEqual([devid.handle]);
  });

  it('close() flushes what the caller left loaded, and the TPM has its slots back', async () => {
    client = await tpm.open();
    for (let i = 0; i < 3; i++) await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    expect(await tpm.loaded()).toHaveLength(3);
    await client.close();
    expect(await tpm.loaded()).toEqual([]);
    client = await tpm.open();
    // swtpm holds three loaded objects: had close() left them, this would fail with TPM_RC_OBJECT_MEMORY.
    for (let i = 0; i < 3; i++) await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
  });
});

/** Length of the DER object at the start of `b` (NV indexes may pad the certificate). */
function derLength(b: Buffer): number {
  const first = b[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  return 2 + n + b.subarray(2, 2 + n).reduce((acc, x) => acc * 256 + x, 0);
}
