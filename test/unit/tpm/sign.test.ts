/**
 * Hash, Sign and Certify against swtpm, verified outside the TPM with node:crypto: the DevID key
 * signs a nonce as tpm_devid answers the server's challenge, and an AK made as spire-agent makes it
 * certifies the DevID.
 */
import { createHash, createPublicKey, verify, X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  akTemplateRSA,
  ALG,
  certify,
  create,
  createPrimary,
  hash,
  hashAndSign,
  load,
  objectName,
  parseAttest,
  parsePublic,
  publicKeyOf,
  RH,
  sign,
  signatureBytes,
  signingKeyTemplateECC,
  srkTemplateHighRSA,
  type TpmClient,
} from '../../../src/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);
const NONCE = Buffer.from('a 32-byte nonce from the server.');

describe.skipIf(skip)('TPM signatures on swtpm', () => {
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

  async function loadDevID(): Promise<number> {
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    const devid = await load(client, { parent: srk.handle, private: tpm.file('devid_priv.bin'), public: tpm.file('devid_pub.bin') });
    await client.flush(srk.handle);
    return devid.handle;
  }

  it('TPM2_Hash gives the SHA-256 node:crypto computes, and a ticket for the hierarchy asked', async () => {
    client = await tpm.open();
    const { digest, ticket } = await hash(client, NONCE, ALG.SHA256, RH.PLATFORM);
    expect(digest.equals(createHash('sha256').update(NONCE).digest())).toBe(true);
    expect(ticket).toMatchObject({ tag: 0x8024, hierarchy: RH.PLATFORM });
  });

  it('the DevID key signs a nonce (hashed in the TPM) and the DevID certificate verifies it', async () => {
    client = await tpm.open();
    const devid = await loadDevID();
    const sig = await hashAndSign(client, { key: devid, keyAuth: tpm.devidPassword, keyLabel: 'DevID key', data: NONCE, hierarchy: RH.PLATFORM });
    expect(sig).toMatchObject({ sigAlg: ALG.RSASSA, hash: ALG.SHA256 });
    const cert = new X509Certificate(tpm.file('devid.pem'));
    expect(verify('sha256', NONCE, cert.publicKey, signatureBytes(sig))).toBe(true);
    expect(verify('sha256', Buffer.from('another nonce'), cert.publicKey, signatureBytes(sig))).toBe(false);
  });

  it('an ECDSA key made with TPM2_Create signs; the DER signature verifies with node:crypto', async () => {
    client = await tpm.open();
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
    const made = await create(client, { parent: srk.handle, template: signingKeyTemplateECC(), userAuth: 'ecc' });
    const key = await load(client, { parent: srk.handle, private: made.private, public: made.public.bytes });
    await client.flush(srk.handle);
    const digest = createHash('sha256').update(NONCE).digest();
    const sig = await sign(client, { key: key.handle, keyAuth: 'ecc', digest });
    expect(sig.sigAlg).toBe(ALG.ECDSA);
    expect(verify('sha256', NONCE, { key: publicKeyOf(made.public.area), dsaEncoding: 'der' }, signatureBytes(sig))).toBe(true);
  });

  it("an AK made as spire-agent makes it certifies the DevID: the AK's signature verifies and names the DevID", async () => {
    client = await tpm.open();
    const devid = await loadDevID();
    const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA(), userAuth: 'srk' });
    const akBlobs = await create(client, { parent: srk.handle, parentAuth: 'srk', template: akTemplateRSA(), userAuth: 'ak' });
    const ak = await load(client, { parent: srk.handle, parentAuth: 'srk', private: akBlobs.private, public: akBlobs.public.bytes });
    await client.flush(srk.handle);
    const { attest, signature } = await certify(client, {
      object: devid,
      objectAuth: tpm.devidPassword,
      signer: ak.handle,
      signerAuth: 'ak',
      scheme: { scheme: ALG.RSASSA, hash: ALG.SHA256 },
    });
    expect(verify('sha256', attest, publicKeyOf(akBlobs.public.area), signatureBytes(signature))).toBe(true);
    const parsed = parseAttest(attest);
    expect(parsed.type).toBe(0x8017);
    expect(parsed.certified?.name.equals(objectName(parsePublic(tpm.file('devid_pub.bin'))))).toBe(true);
    expect(parsed.qualifiedSigner.length).toBeGreaterThan(0);
    // The public key tpm2-tools printed during provisioning is the DevID's.
    expect(publicKeyOf(parsePublic(tpm.file('devid_pub.bin')).area).export({ format: 'jwk' })).toEqual(createPublicKey(tpm.file('devid-pubkey.pem')).export({ format: 'jwk' }));
  });
});
