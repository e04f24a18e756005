/**
 * NV_ReadPublic and NV_Read against swtpm, compared with tpm2_nvreadpublic and tpm2_nvread: the EK
 * certificate spire-agent's tpm_devid sends, read whole and in pieces.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EK_CERT_NV_INDEX_RSA, getProperty, nvRead, nvReadPublic, PT, RH, TpmError, type TpmClient } from '../../../src/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);
const PLATFORM_CERT = 0x01c08000;

describe.skipIf(skip)('TPM NV reads on swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;

  beforeAll(async () => {
    tpm = await Swtpm.start();
    client = await tpm.open();
  });
  afterAll(async () => {
    await client?.close();
    await tpm?.stop();
  });
  afterEach(async () => {
    expect(client.liveHandles).toEqual([]);
  });

  it.each([
    ['the RSA EK certificate', EK_CERT_NV_INDEX_RSA],
    ['the platform certificate', PLATFORM_CERT],
  ])('reads %s as tpm2_nvreadpublic describes it', async (_, index) => {
    const pub = await nvReadPublic(client, index);
    const yaml = (await tpm.tool('tpm2_nvreadpublic', [`0x${index.toString(16)}`])).toString();
    expect(pub.index).toBe(index);
    expect(pub.name.toString('hex')).toBe(/name: ([0-9a-f]+)/.exec(yaml)![1]);
    expect(`0x${pub.attributes.toString(16).toUpperCase()}`).toBe(/attributes:[\s\S]*?value: (0x[0-9A-F]+)/.exec(yaml)![1]);
    expect(pub.dataSize).toBe(Number(/size: (\d+)/.exec(yaml)![1]));
  });

  it.each([
    ['in one piece', undefined],
    ['in 100-byte pieces', 100],
    ['in 1-byte pieces at the end (1016 = 3 x 337 + 5)', 337],
  ])('reads the EK certificate %s, byte for byte what tpm2_nvread reads', async (_, chunk) => {
    const theirs = await tpm.tool('tpm2_nvread', ['0x01c00002', '-C', 'o']);
    const ours = await nvRead(client, { index: EK_CERT_NV_INDEX_RSA, ...(chunk ? { chunk } : {}) });
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
    // Issued by swtpm-localca's intermediate (the template's ek-ca.pem holds the root, then it).
    const issuer = new X509Certificate(tpm.file('ek-ca.pem').toString().split(/(?<=-----END CERTIFICATE-----\n)/)[1]!);
    expect(new X509Certificate(ours).verify(issuer.publicKey)).toBe(true);
  });

  it('reads through the owner hierarchy too (the index is OWNERREAD)', async () => {
    const ours = await nvRead(client, { index: EK_CERT_NV_INDEX_RSA, authHandle: RH.OWNER });
    expect(ours.equals(await tpm.tool('tpm2_nvread', ['0x01c00002', '-C', 'o']))).toBe(true);
  });

  it('asks the TPM for its NV buffer size, as tpm2_getcap reports it', async () => {
    const yaml = (await tpm.tool('tpm2_getcap', ['properties-fixed'])).toString();
    expect(await getProperty(client, PT.NV_BUFFER_MAX)).toBe(Number(/TPM2_PT_NV_BUFFER_MAX:\s+raw: (0x[0-9A-F]+)/.exec(yaml)![1]));
  });

  it('an index that does not exist is a TPM error naming the command and the handle', async () => {
    const err = await nvReadPublic(client, 0x01c0ffff).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TpmError);
    expect(err).toMatchObject({ code: 'tpm_command_failed', command: 'TPM2_NV_ReadPublic', rc: { name: 'TPM_RC_HANDLE', handle: 1 } });
    expect((err as Error).message).toContain('handle 1 = NV index 0x1c0ffff');
  });
});
