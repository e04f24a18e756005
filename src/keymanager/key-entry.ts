/**
 * Keys the disk and memory managers hold as KeyObjects in this process. The private half is a
 * private field: the agent reaches it only through the ManagedKey contract (sign, unsealForTLS),
 * and the disk manager through `pkcs8()` to write keys.json.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { ManagedKey } from './types.js';

export class SoftwareKey implements ManagedKey {
  readonly publicKeySpki: Uint8Array;
  readonly #privateKey: KeyObject;

  constructor(
    readonly id: string,
    privateKey: KeyObject,
  ) {
    this.#privateKey = privateKey;
    this.publicKeySpki = new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
    Object.freeze(this);
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(sign('sha256', data, { key: this.#privateKey, dsaEncoding: 'der' }));
  }

  async unsealForTLS(): Promise<KeyObject> {
    return this.#privateKey;
  }

  /** PKCS#8 DER, what spire-agent's keys.json holds (base64). */
  pkcs8(): Uint8Array {
    return new Uint8Array(this.#privateKey.export({ type: 'pkcs8', format: 'der' }));
  }
}

export function generateP256(id: string): SoftwareKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return new SoftwareKey(id, privateKey);
}

export function keyFromPkcs8(id: string, der: Uint8Array): SoftwareKey {
  return new SoftwareKey(id, createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }));
}
