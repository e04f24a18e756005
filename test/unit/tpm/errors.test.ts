/**
 * What a user reads when the TPM refuses: each case is provoked on swtpm, and the error names the
 * command, the entity and the TPM's reason (the response code decoded), and says what to do.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPrimary, hashAndSign, load, readPublic, RH, srkTemplateHighRSA, TpmError, type TpmClient } from '../../../src/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);

async function failure(p: Promise<unknown>): Promise<TpmError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(TpmError);
  return err as TpmError;
}

describe.skipIf(skip)('TPM errors on swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;

  beforeAll(async () => {
    tpm = await Swtpm.start();
  });
  afterAll(async () => {
    await tpm?.stop();
  });
  afterEach(async () => {
    await client?.close();
    expect(await tpm.loaded()).toEqual([]);
  });

  it('a wrong owner hierarchy password: "owner hierarchy password is wrong"', async () => {
    client = await tpm.open();
    await tpm.tool('tpm2_changeauth', ['-c', 'o', 'owner-secret']);
    try {
      const err = await failure(createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() }));
      expect(err).toMatchObject({ code: 'tpm_auth_failed', command: 'TPM2_CreatePrimary', rc: { session: 1 } });
      expect(err.message).toMatch(/^tpm: TPM2_CreatePrimary: owner hierarchy password is wrong: .*tpm2_changeauth -c o/);
      expect(err.message).toMatch(/\(TPM_RC_BAD_AUTH, session 1 = owner hierarchy, rc 0x9a2\)$/);
      const srk = await createPrimary(client, { hierarchy: RH.OWNER, hierarchyAuth: 'owner-secret', template: srkTemplateHighRSA() });
      await client.flush(srk.handle);
    } finally {
      await tpm.tool('tpm2_changeauth', ['-c', 'o', '-p', 'owner-secret']);
    }
  });

  it('a wrong DevID key password: AUTH_FAIL naming the key, and the lockout it leads to', async () => {
    client = await tpm.open();
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    const devid = await load(client, { parent: srk.handle, parentLabel: 'SRK', private: tpm.file('devid_priv.bin'), public: tpm.file('devid_pub.bin') });
    await client.flush(srk.handle);
    const err = await failure(hashAndSign(client, { key: devid.handle, keyAuth: 'wrong', keyLabel: 'DevID key', data: Buffer.from('nonce') }));
    expect(err).toMatchObject({ code: 'tpm_auth_failed', command: 'TPM2_Sign', rc: { name: 'TPM_RC_AUTH_FAIL', session: 1 } });
    expect(err.message).toMatch(/^tpm: TPM2_Sign: the password of DevID key is wrong\. The failure counted toward the dictionary-attack lockout/);
  });

  it('a handle that is not loaded: the TPM says which handle, and we say what it was', async () => {
    client = await tpm.open();
    const err = await failure(readPublic(client, 0x80000002, 'DevID key'));
    expect(err.code).toBe('tpm_command_failed');
    expect(err.message).toMatch(/^tpm: TPM2_ReadPublic: .*\((TPM_RC_REFERENCE_H0: DevID key|TPM_RC_HANDLE, handle 1 = DevID key), rc 0x[0-9a-f]+\)$/);
    // A handle outside the transient range is a different code, still pinned to the handle.
    expect((await failure(readPublic(client, 0x80ffffff, 'DevID key'))).message).toMatch(/\(TPM_RC_VALUE, handle 1 = DevID key, rc 0x184\)$/);
  });

  it('a fourth object without a resource manager: TPM_RC_OBJECT_MEMORY, with what to do', async () => {
    client = await tpm.open();
    for (let i = 0; i < 3; i++) await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    const err = await failure(createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() }));
    expect(err.message).toMatch(/TPM_RC_OBJECT_MEMORY/);
    expect(err.message).toMatch(/tpm2_flushcontext -t -s\) or use \/dev\/tpmrm0/);
  });
});
