/**
 * Sealing and unsealing against swtpm, what a TPM-sealed key manager does: data sealed with our
 * client is unsealed by tpm2_unseal and by us; a wrong password is AUTH_FAIL, and three of them
 * lock the TPM out (swtpm's TPM_PT_MAX_AUTH_FAIL is 3), each with a message that says so.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { create, createPrimary, load, RH, sealedDataTemplate, srkTemplateHighRSA, TpmError, unseal, type TpmClient } from '../../../src/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);

function tpm2b(b: Buffer): Buffer {
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

describe.skipIf(skip)('TPM sealing on swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;
  let work: string;

  beforeAll(async () => {
    tpm = await Swtpm.start();
    work = mkdtempSync(join(tmpdir(), 'tpm-seal-'));
  });
  afterAll(async () => {
    await tpm?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  afterEach(async () => {
    await client?.close();
    expect(await tpm.loaded()).toEqual([]);
  });

  async function sealAndLoad(data: Buffer, userAuth: string): Promise<{ handle: number; private: Buffer; public: Buffer }> {
    client = await tpm.open();
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    const sealed = await create(client, { parent: srk.handle, template: sealedDataTemplate(), userAuth, data });
    const obj = await load(client, { parent: srk.handle, private: sealed.private, public: sealed.public.bytes });
    await client.flush(srk.handle);
    return { handle: obj.handle, private: sealed.private, public: sealed.public.bytes };
  }

  it('unseals what it sealed, and tpm2_unseal unseals it too', async () => {
    const data = randomBytes(32);
    const sealed = await sealAndLoad(data, 'kek-password');
    expect((await unseal(client, sealed.handle, 'kek-password')).equals(data)).toBe(true);
    await client.flush(sealed.handle);
    writeFileSync(join(work, 'pub'), tpm2b(sealed.public));
    writeFileSync(join(work, 'priv'), tpm2b(sealed.private));
    // tpm2-tools save each object to a file and leave it loaded: flush after each step (swtpm has 3 slots).
    await tpm.tool('tpm2_createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'rsa2048:null:aes128cfb', '-a', 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda', '-c', 'srk.ctx'], work);
    await tpm.tool('tpm2_flushcontext', ['-t']);
    await tpm.tool('tpm2_load', ['-Q', '-C', 'srk.ctx', '-u', 'pub', '-r', 'priv', '-c', 'obj.ctx'], work);
    await tpm.tool('tpm2_flushcontext', ['-t']);
    const theirs = await tpm.tool('tpm2_unseal', ['-c', 'obj.ctx', '-p', 'kek-password'], work);
    await tpm.tool('tpm2_flushcontext', ['-t']);
    expect(theirs.equals(data)).toBe(true);
  });

  it('refuses more than 128 bytes of sealed data before sending anything', async () => {
    client = await tpm.open();
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    await expect(create(client, { parent: srk.handle, template: sealedDataTemplate(), data: randomBytes(129) })).rejects.toMatchObject({ code: 'tpm_invalid_argument' });
  });

  it('a wrong password is AUTH_FAIL naming the object; after three the TPM is in lockout, and says what to do', async () => {
    const sealed = await sealAndLoad(randomBytes(16), 'right');
    const first = await unseal(client, sealed.handle, 'wrong', 'sealed key-encryption key').then(() => undefined, (e: unknown) => e);
    expect(first).toBeInstanceOf(TpmError);
    expect(first).toMatchObject({ code: 'tpm_auth_failed', rc: { name: 'TPM_RC_AUTH_FAIL', session: 1 } });
    expect((first as Error).message).toMatch(/^tpm: TPM2_Unseal: the password of sealed key-encryption key is wrong\. The failure counted toward the dictionary-attack lockout/);
    for (let i = 0; i < 2; i++) await unseal(client, sealed.handle, 'wrong').catch(() => undefined);
    const locked = await unseal(client, sealed.handle, 'right').then(() => undefined, (e: unknown) => e);
    expect(locked).toMatchObject({ code: 'tpm_lockout', rc: { name: 'TPM_RC_LOCKOUT' } });
    expect((locked as Error).message).toMatch(/dictionary-attack lockout.*tpm2_dictionarylockout --clear-lockout/);
    // tpm2-tools sees the same state.
    expect((await tpm.tool('tpm2_getcap', ['properties-variable'])).toString()).toMatch(/inLockout:\s+1/);
  });
});
