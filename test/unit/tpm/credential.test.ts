/**
 * Credential activation against swtpm, as tpm_devid answers the server's residency challenge: a
 * credential made in software (test/helpers/tpm/make-credential.ts, from the spec) and one made by
 * tpm2_makecredential both come back out of TPM2_ActivateCredential, through the EK's
 * PolicySecret(endorsement) session.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  activateCredential,
  akTemplateRSA,
  create,
  createPrimary,
  ekTemplateRSA,
  load,
  policy,
  policySecret,
  publicKeyOf,
  RH,
  srkTemplateHighRSA,
  startAuthSession,
  TpmCommandError,
  type PublicBlob,
  type TpmClient,
} from '../../../src/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { makeCredential } from '../../helpers/tpm/make-credential.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);

describe.skipIf(skip)('TPM credential activation on swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;
  let work: string;
  let ak: { handle: number; name: Buffer };
  let ek: { handle: number; public: PublicBlob };

  beforeAll(async () => {
    tpm = await Swtpm.start();
    work = mkdtempSync(join(tmpdir(), 'tpm-credential-'));
  });
  afterAll(async () => {
    await tpm?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  afterEach(async () => {
    await client?.close();
    expect(await tpm.loaded(), 'sessions and objects left behind').toEqual([]);
  });

  async function setUp(): Promise<void> {
    client = await tpm.open();
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    const blobs = await create(client, { parent: srk.handle, template: akTemplateRSA(), userAuth: 'ak' });
    ak = await load(client, { parent: srk.handle, private: blobs.private, public: blobs.public.bytes });
    await client.flush(srk.handle);
    ek = await createPrimary(client, { hierarchy: RH.ENDORSEMENT, template: ekTemplateRSA() });
  }

  async function activate(blob: { credentialBlob: Buffer; secret: Buffer }, endorsementAuth = ''): Promise<Buffer> {
    const session = await startAuthSession(client);
    await policySecret(client, { authHandle: RH.ENDORSEMENT, auth: endorsementAuth, session: session.handle });
    return activateCredential(client, { activate: ak.handle, activateAuth: 'ak', key: ek.handle, keyAuth: policy(session.handle), ...blob });
  }

  it('gives back the secret of a credential made in software for the AK', async () => {
    await setUp();
    const secret = randomBytes(32);
    expect((await activate(makeCredential(publicKeyOf(ek.public.area), ak.name, secret))).equals(secret)).toBe(true);
    // The policy session ended with the command: the client no longer counts it.
    expect(client.liveHandles).toEqual([ak.handle, ek.handle]);
  });

  it('gives back the secret of a credential tpm2_makecredential made', async () => {
    await setUp();
    writeFileSync(join(work, 'ek.pub'), Buffer.concat([Buffer.from([ek.public.bytes.length >> 8, ek.public.bytes.length & 0xff]), ek.public.bytes]));
    const secret = randomBytes(32);
    writeFileSync(join(work, 'secret'), secret);
    await tpm.tool('tpm2_makecredential', ['-T', 'none', '-u', join(work, 'ek.pub'), '-s', join(work, 'secret'), '-n', ak.name.toString('hex'), '-o', join(work, 'cred')]);
    // tpm2-tools' file: magic and version (8 bytes), TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    const file = readFileSync(join(work, 'cred'));
    const idSize = file.readUInt16BE(8);
    const credentialBlob = file.subarray(10, 10 + idSize);
    const secretBlob = file.subarray(12 + idSize, 12 + idSize + file.readUInt16BE(10 + idSize));
    expect((await activate({ credentialBlob, secret: secretBlob })).equals(secret)).toBe(true);
  });

  it('refuses a credential made for another key: TPM_RC_INTEGRITY, named', async () => {
    await setUp();
    const other = Buffer.concat([ak.name.subarray(0, 2), randomBytes(32)]);
    const err = await activate(makeCredential(publicKeyOf(ek.public.area), other, randomBytes(32))).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TpmCommandError);
    expect(err).toMatchObject({ code: 'tpm_command_failed', command: 'TPM2_ActivateCredential', rc: { name: 'TPM_RC_INTEGRITY' } });
  });

  it('a wrong endorsement hierarchy password is reported as such', async () => {
    await setUp();
    const err = await activate(makeCredential(publicKeyOf(ek.public.area), ak.name, randomBytes(32)), 'not-the-password').then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'tpm_auth_failed', command: 'TPM2_PolicySecret', rc: { session: 1 } });
    expect((err as Error).message).toMatch(/^tpm: TPM2_PolicySecret: endorsement hierarchy password is wrong/);
  });
});
