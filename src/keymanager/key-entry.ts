/** Key material shared by the key managers: P-256 generation and PKCS#8 round trips. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { ManagedKey } from './types.js';

export function generateP256(id: string): ManagedKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return keyEntry(id, privateKey);
}

export function keyEntry(id: string, privateKey: KeyObject): ManagedKey {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return Object.freeze({ id, privateKey, publicKeySpki: new Uint8Array(spki) });
}

export function keyFromPkcs8(id: string, der: Uint8Array): ManagedKey {
  return keyEntry(id, createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }));
}

export function pkcs8Of(key: ManagedKey): Uint8Array {
  return new Uint8Array(key.privateKey.export({ type: 'pkcs8', format: 'der' }));
}
