/**
 * What KeyManager "tpm" asks of the TPM. Each use opens the TPM, recreates the storage root key
 * (SRK) from the standard ECC template (TCG EK profile H-2 under the owner hierarchy; a primary
 * key is derived from the hierarchy's seed, so the same TPM gives the same SRK every time and no
 * persistent handle is needed), does its work, flushes everything it loaded and closes the TPM.
 * Holding nothing open between uses leaves the device (and swtpm's three object slots) to
 * tpm_devid and other users.
 *
 * A private key is a P-256 scalar (32 bytes) sealed in a keyedHash data object under the SRK:
 * TPM2_Create encrypts it with a key derived from the SRK, which never leaves this TPM, so the
 * blobs unseal in this TPM only, and not after TPM2_Clear (which replaces the owner seed).
 */
import { createECDH, generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { SpiffeAgentError } from '../../errors.js';
import type {} from '../errors.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Clock } from '../../clock.js';
import type { OpenTpm } from '../../tpm/open-tpm.js';
import { OBJECT_ATTR, RH, TpmError, create, createPrimary, load, sealedDataTemplate, srkTemplateHighECC, unseal, type TpmClient } from '../../tpm/index.js';
import { SoftwareKey } from '../key-entry.js';
import type { TpmKeyManagerConfig } from './config.js';
import { KeyManagerTpmError } from './errors.js';
import type { SealedKeyRecord } from './key-file.js';

export interface TpmUse {
  readonly client: TpmClient;
  readonly srkHandle: number;
  /** The SRK's Name: what the key file records to recognise this TPM (and this owner seed). */
  readonly srkName: Buffer;
}

export interface TpmAccess {
  readonly config: TpmKeyManagerConfig;
  readonly openTpm: OpenTpm;
  readonly log: Logger;
  readonly clock: Clock;
}

const SRK_LABEL = 'storage root key';

/** Opens the TPM, creates the SRK, runs `fn`, and leaves the TPM as it found it. */
export async function withSRK<T>(a: TpmAccess, fn: (use: TpmUse) => Promise<T>): Promise<T> {
  const where = a.config.tpmDevicePath ?? 'the TPM in /dev';
  let client: TpmClient;
  try {
    client = await a.openTpm(a.config.tpmDevicePath, { log: a.log, clock: a.clock });
  } catch (err) {
    throw tpmFailure(err, `could not open ${where}`);
  }
  try {
    let srk;
    try {
      srk = await createPrimary(client, { hierarchy: RH.OWNER, hierarchyAuth: a.config.ownerHierarchyPassword, template: srkTemplateHighECC() });
    } catch (err) {
      // The owner hierarchy's password is the one this plugin's config supplies: name the key.
      const how = err instanceof TpmError && err.code === 'tpm_auth_failed' ? ' with plugin_data owner_hierarchy_password' : '';
      throw tpmFailure(err, `could not create the storage root key on ${client.description}${how}`);
    }
    try {
      return await fn({ client, srkHandle: srk.handle, srkName: srk.name });
    } finally {
      await client.flush(srk.handle).catch(() => undefined);
    }
  } finally {
    // Flushes anything `fn` left loaded (an object a failed command did not release).
    await client.close();
  }
}

/**
 * The sealed object's template: the library's sealed-data template, plus noDA. Its authValue is
 * empty (what guards the blob is the SRK, not a password stored next to it), so dictionary-attack
 * protection would guard nothing, and noDA keeps the agent able to start while the TPM is in
 * lockout because of someone else's wrong passwords.
 */
export function sealedKeyTemplate(): ReturnType<typeof sealedDataTemplate> {
  const t = sealedDataTemplate();
  return { ...t, attributes: t.attributes | OBJECT_ATTR.noDA };
}

/** A fresh P-256 key; its scalar is sealed and the KeyObject kept for this process. */
export function newP256(id: string): { key: SoftwareKey; scalar: Buffer } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const d = privateKey.export({ format: 'jwk' }).d;
  if (d === undefined) throw new Error('keymanager(tpm): node:crypto exported an EC key without its private scalar');
  return { key: new SoftwareKey(id, privateKey), scalar: Buffer.from(d, 'base64url') };
}

export async function sealKey(use: TpmUse, id: string, scalar: Uint8Array, spki: Uint8Array): Promise<SealedKeyRecord> {
  try {
    const sealed = await create(use.client, { parent: use.srkHandle, parentLabel: SRK_LABEL, template: sealedKeyTemplate(), data: scalar });
    return Object.freeze({ id, spki, public: sealed.public.bytes, private: sealed.private });
  } catch (err) {
    throw tpmFailure(err, `could not seal key "${id}"`);
  }
}

/** Loads, unseals and flushes one sealed key; the key it gives must match the recorded public key. */
export async function unsealKey(use: TpmUse, rec: SealedKeyRecord, path: string): Promise<SoftwareKey> {
  let scalar: Buffer;
  try {
    const obj = await load(use.client, { parent: use.srkHandle, parentLabel: SRK_LABEL, private: rec.private, public: rec.public });
    try {
      scalar = await unseal(use.client, obj.handle, '', `sealed key "${rec.id}"`);
    } finally {
      await use.client.flush(obj.handle);
    }
  } catch (err) {
    // The SRK matched, so the TPM is the right one: a blob it refuses was altered.
    if (err instanceof TpmError && err.code === 'tpm_command_failed') {
      throw new SpiffeAgentError('keymanager_corrupt', `keymanager(tpm): ${path}: the TPM refused the sealed blob of key "${rec.id}" (${err.message}); restore the file or remove it (the agent then attests again)`, { cause: err });
    }
    throw tpmFailure(err, `could not unseal key "${rec.id}"`);
  }
  try {
    const key = keyFromScalar(rec.id, scalar);
    if (!Buffer.from(key.publicKeySpki).equals(Buffer.from(rec.spki))) {
      throw new SpiffeAgentError('keymanager_corrupt', `keymanager(tpm): ${path}: key "${rec.id}" unsealed to a key that is not the recorded public key; restore the file or remove it (the agent then attests again)`);
    }
    return key;
  } finally {
    scalar.fill(0);
  }
}

/** A P-256 private key from its scalar: the public point is computed, not trusted from the file. */
export function keyFromScalar(id: string, scalar: Uint8Array): SoftwareKey {
  if (scalar.length !== 32) throw new SpiffeAgentError('keymanager_corrupt', `keymanager(tpm): sealed key "${id}" holds ${scalar.length} bytes, not a 32-byte P-256 scalar`);
  let key;
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(scalar);
    const point = ecdh.getPublicKey();
    const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
    key = createPrivateKey({ key: { kty: 'EC', crv: 'P-256', d: b64(scalar), x: b64(point.subarray(1, 33)), y: b64(point.subarray(33, 65)) }, format: 'jwk' });
  } catch (err) {
    throw new SpiffeAgentError('keymanager_corrupt', `keymanager(tpm): sealed key "${id}" is not a valid P-256 private scalar`, { cause: err });
  }
  return new SoftwareKey(id, key);
}

/** A TPM error as the key manager's: typed, prefixed with what it was doing; other errors pass. */
export function tpmFailure(err: unknown, doing: string): unknown {
  if (err instanceof KeyManagerTpmError || (err instanceof SpiffeAgentError && err.code === 'keymanager_corrupt')) return err;
  if (err instanceof TpmError) return new KeyManagerTpmError('keymanager_tpm_failed', `keymanager(tpm): ${doing}: ${err.message}`, { cause: err });
  return err;
}
