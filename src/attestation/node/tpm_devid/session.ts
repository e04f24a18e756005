/**
 * tpm_devid's side of the TPM, in the order spire-agent v1.13.3 drives it:
 *   1. the owner-hierarchy SRK spire-agent recreates (high-range RSA or ECC template, to match the
 *      DevID key), the DevID blobs loaded under it, the SRK flushed;
 *   2. an RSA SRK again, an attestation key (AK) created and loaded under it, the SRK flushed;
 *   3. the default RSA EK recreated under the endorsement hierarchy;
 *   4. the EK certificate read from NV 0x01c00002, the EK and AK public areas, and the AK's
 *      certification of the DevID key (TPM2_Certify);
 * then the two answers: the DevID key signs the server's nonce (hashed in the TPM), and the EK,
 * authorized by PolicySecret(endorsement), activates the server's credential for the AK.
 *
 * spire-agent creates the AK under one SRK and loads it under a second, identical one; here one
 * SRK does both (the same key: a primary is a function of seed and template), which saves an RSA
 * key generation. At most three objects are loaded at once (DevID, SRK, AK; then DevID, AK, EK),
 * which is all a TPM without resource manager (swtpm, /dev/tpm0) holds. `close()` flushes
 * everything, so the next attestation — ours or spire-agent's — finds the slots free.
 */
import { randomBytes } from 'node:crypto';
import {
  ALG,
  EK_CERT_NV_INDEX_RSA,
  RC,
  RH,
  TpmCommandError,
  TpmError,
  activateCredential,
  akTemplateRSA,
  certify,
  create,
  createPrimary,
  ekTemplateRSA,
  hashAndSign,
  load,
  nvRead,
  policy,
  policySecret,
  readPublic,
  signatureBytes,
  srkTemplateHighECC,
  srkTemplateHighRSA,
  startAuthSession,
  type TpmClient,
} from '../../../tpm/index.js';
import type { Logger } from '../../../telemetry/logger.js';
import type { TpmDevidPasswords } from './config.js';
import { TpmDevidError } from './errors.js';
import type { DevIDMaterial } from './material.js';
import type { AttestationRequest } from './wire.js';

type PasswordKey = 'owner_hierarchy_password' | 'endorsement_hierarchy_password' | 'devid_password';

/** A TPM client error, as what tpm_devid was doing and which setting to look at. */
export function explainTpmError(err: unknown, what: string, password?: PasswordKey): unknown {
  if (err instanceof TpmDevidError || !(err instanceof TpmError)) return err;
  if (err instanceof TpmCommandError && err.code === 'tpm_auth_failed' && password !== undefined) {
    return new TpmDevidError('tpm_devid_auth', `${what}: the TPM refused ${password} (check it in the tpm_devid plugin_data): ${err.message}`, { cause: err });
  }
  return new TpmDevidError('tpm_devid_tpm', `${what}: ${err.message}`, { cause: err });
}

async function step<T>(what: string, password: PasswordKey | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explainTpmError(err, what, password);
  }
}

/** A throwaway password for the SRK and AK, as spire-agent makes (32 random bytes). */
function randomAuth(): Buffer {
  const b = randomBytes(32);
  // The TPM drops trailing zero bytes of an authValue; a password that ends in one would then
  // differ from what we send. Avoid the case rather than depend on how each TPM compares.
  b[31] = b[31]! | 1;
  return b;
}

/** Length of the DER element at the start of `b` (tag, length, contents), or undefined if it does not fit. */
export function derElementLength(b: Uint8Array): number | undefined {
  if (b.length < 2) return undefined;
  const first = b[1]!;
  let len: number;
  let hdr = 2;
  if (first < 0x80) len = first;
  else {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || b.length < 2 + n) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[2 + i]!;
    hdr += n;
  }
  return hdr + len <= b.length ? hdr + len : undefined;
}

export class DevIDSession {
  private devID = 0;
  private ak = 0;
  private ek = 0;
  private readonly akAuth = randomAuth();

  private constructor(
    private readonly tpm: TpmClient,
    private readonly m: DevIDMaterial,
    private readonly pw: TpmDevidPasswords,
    private readonly log: Logger,
  ) {}

  /** Steps 1–3: DevID, AK and EK loaded. On failure, whatever was loaded is flushed. */
  static async start(tpm: TpmClient, m: DevIDMaterial, pw: TpmDevidPasswords, log: Logger, signal?: AbortSignal): Promise<DevIDSession> {
    const s = new DevIDSession(tpm, m, pw, log);
    try {
      await s.load(signal);
      return s;
    } catch (err) {
      await s.close();
      throw err;
    }
  }

  private async withSRK<T>(template: 'rsa' | 'ecc', auth: Buffer, what: string, use: (srk: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const srk = await step(`${what}: cannot create the storage root key (owner hierarchy)`, 'owner_hierarchy_password', () =>
      createPrimary(this.tpm, { hierarchy: RH.OWNER, hierarchyAuth: this.pw.ownerHierarchy, userAuth: auth, template: template === 'rsa' ? srkTemplateHighRSA() : srkTemplateHighECC() }, signal),
    );
    try {
      return await use(srk.handle);
    } finally {
      await this.flushQuietly(srk.handle, 'storage root key');
    }
  }

  private async load(signal?: AbortSignal): Promise<void> {
    const srkAuth = randomAuth();
    const devIDType = this.m.pub.area.type === ALG.ECC ? 'ecc' : 'rsa';
    this.devID = await this.withSRK(devIDType, srkAuth, 'cannot load the DevID key', async (srk) => {
      const loaded = await step(
        'cannot load the DevID key (devid_pub_path, devid_priv_path) under the storage root key; the blobs must have been created under the SRK spire-agent recreates (tpm2_createprimary -C o -g sha256 -G rsa2048:null:aes128cfb -a "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda") in this TPM',
        undefined,
        () => load(this.tpm, { parent: srk, parentAuth: srkAuth, parentLabel: 'storage root key', public: this.m.pub.bytes, private: this.m.priv }, signal),
      );
      return loaded.handle;
    }, signal);
    this.log.debug({ handle: `0x${this.devID.toString(16)}` }, 'DevID key loaded');

    const { ak, akPub } = await this.withSRK('rsa', srkAuth, 'cannot create the attestation key', async (srk) => {
      const created = await step('cannot create the attestation key', undefined, () => create(this.tpm, { parent: srk, parentAuth: srkAuth, parentLabel: 'storage root key', template: akTemplateRSA(), userAuth: this.akAuth }, signal));
      const loaded = await step('cannot load the attestation key', undefined, () => load(this.tpm, { parent: srk, parentAuth: srkAuth, parentLabel: 'storage root key', public: created.public.bytes, private: created.private }, signal));
      return { ak: loaded.handle, akPub: created.public.bytes };
    }, signal);
    this.ak = ak;
    this.akPub = akPub;

    const ek = await step('cannot create the endorsement key (endorsement hierarchy)', 'endorsement_hierarchy_password', () =>
      createPrimary(this.tpm, { hierarchy: RH.ENDORSEMENT, hierarchyAuth: this.pw.endorsementHierarchy, template: ekTemplateRSA() }, signal),
    );
    this.ek = ek.handle;
  }

  private akPub: Buffer = Buffer.alloc(0);

  /** Step 4: everything the payload needs besides the files. */
  async attestationRequest(signal?: AbortSignal): Promise<AttestationRequest> {
    const ekCert = await this.readEKCert(signal);
    const ekPub = await step('cannot read the endorsement key public area', undefined, () => readPublic(this.tpm, this.ek, 'endorsement key', signal));
    const certified = await step('cannot certify the DevID key with the attestation key', 'devid_password', () =>
      certify(
        this.tpm,
        {
          object: this.devID,
          objectAuth: this.pw.devID,
          objectLabel: 'DevID key',
          signer: this.ak,
          signerAuth: this.akAuth,
          signerLabel: 'attestation key',
          scheme: { scheme: ALG.RSASSA, hash: ALG.SHA256 },
        },
        signal,
      ),
    );
    return {
      devIDCert: this.m.certificates,
      devIDPub: this.m.pub.bytes,
      ekCert,
      ekPub: ekPub.public.bytes,
      akPub: this.akPub,
      certifiedDevID: certified.attest,
      certificationSignature: certified.signature.bytes,
    };
  }

  private async readEKCert(signal?: AbortSignal): Promise<Buffer> {
    const where = `NV index 0x${EK_CERT_NV_INDEX_RSA.toString(16).padStart(8, '0')}`;
    let raw: Buffer;
    try {
      raw = await nvRead(this.tpm, { index: EK_CERT_NV_INDEX_RSA }, signal);
    } catch (err) {
      if (err instanceof TpmCommandError && err.rc.base === RC.HANDLE) {
        throw new TpmDevidError(
          'tpm_devid_ek_cert_missing',
          `no EK certificate in the TPM (${this.tpm.description}): ${where} is not defined. tpm_devid needs the RSA EK certificate the TPM's maker stores there; on a simulator, provision one (swtpm_setup --create-ek-cert) [${err.message}]`,
          { cause: err },
        );
      }
      throw explainTpmError(err, `cannot read the EK certificate from ${where}`);
    }
    // Some TPMs return the certificate followed by padding; the server parses exactly one DER certificate.
    const len = raw[0] === 0x30 ? derElementLength(raw) : undefined;
    if (len === undefined) throw new TpmDevidError('tpm_devid_ek_cert_missing', `${where} holds ${raw.length} bytes that are not a DER certificate; tpm_devid needs the RSA EK certificate there`);
    return raw.subarray(0, len);
  }

  /** The DevID proof of possession: the nonce hashed in the TPM (platform hierarchy ticket), signed with the DevID key. */
  async signNonce(nonce: Uint8Array, signal?: AbortSignal): Promise<Buffer> {
    const sig = await step('unable to solve proof of possession challenge (sign the nonce with the DevID key)', 'devid_password', () =>
      hashAndSign(this.tpm, { key: this.devID, keyAuth: this.pw.devID, keyLabel: 'DevID key', data: nonce, hashAlg: this.m.signHash, hierarchy: RH.PLATFORM }, signal),
    );
    return signatureBytes(sig);
  }

  /** The proof of residency: the EK releases the server's secret only for an AK in the same TPM. */
  async activateCredential(credential: Uint8Array, secret: Uint8Array, signal?: AbortSignal): Promise<Buffer> {
    const what = 'unable to solve proof of residency challenge (activate the credential with the EK)';
    const session = await step(what, undefined, () => startAuthSession(this.tpm, {}, signal));
    try {
      await step(`${what}: PolicySecret on the endorsement hierarchy`, 'endorsement_hierarchy_password', () =>
        policySecret(this.tpm, { authHandle: RH.ENDORSEMENT, auth: this.pw.endorsementHierarchy, session: session.handle }, signal),
      );
      return await step(what, undefined, () =>
        activateCredential(this.tpm, { activate: this.ak, activateAuth: this.akAuth, key: this.ek, keyAuth: policy(session.handle), credentialBlob: credential, secret }, signal),
      );
    } catch (err) {
      // A successful ActivateCredential ends the session; a failed one leaves it loaded.
      if (this.tpm.liveHandles.includes(session.handle)) await this.flushQuietly(session.handle, 'policy session');
      throw err;
    }
  }

  /** Flushes DevID, AK and EK (spire-agent's order). Never throws: a failure is logged. */
  async close(): Promise<void> {
    for (const [h, what] of [[this.devID, 'DevID key'], [this.ak, 'attestation key'], [this.ek, 'endorsement key']] as const) {
      if (h !== 0) await this.flushQuietly(h, what);
    }
    this.devID = this.ak = this.ek = 0;
  }

  private async flushQuietly(handle: number, what: string): Promise<void> {
    try {
      await this.tpm.flush(handle);
    } catch (err) {
      this.log.warn({ error: (err as Error).message }, `Failed to flush the ${what} handle 0x${handle.toString(16)}`);
    }
  }
}
