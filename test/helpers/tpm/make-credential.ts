/**
 * TPM2_MakeCredential done in software, as a verifier (the SPIRE server) does it: TCG TPM 2.0
 * Library Part 1, "Credential Protection" and "Protected Storage" (KDFa, the outer HMAC, CFB with a
 * zero IV), with the secret seed encrypted to the EK by RSA-OAEP and the label "IDENTITY".
 * Written from the spec for the tests; the agent itself only activates credentials.
 */
import { constants, createCipheriv, createHmac, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';

/** KDFa in counter mode (Part 1, "Key Derivation Function"), SHA-256. */
export function kdfa(key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const out: Buffer[] = [];
  const bitsBuf = Buffer.alloc(4);
  bitsBuf.writeUInt32BE(bits);
  const labelBytes = Buffer.concat([Buffer.from(label, 'ascii'), Buffer.from([0])]);
  for (let i = 1, have = 0; have < bits / 8; i++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i);
    const block = createHmac('sha256', key).update(counter).update(labelBytes).update(contextU).update(contextV).update(bitsBuf).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}

function tpm2b(b: Buffer): Buffer {
  const size = Buffer.alloc(2);
  size.writeUInt16BE(b.length);
  return Buffer.concat([size, b]);
}

export interface Credential {
  /** TPM2B_ID_OBJECT contents. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET contents. */
  readonly secret: Buffer;
}

/**
 * Seals `credential` to the key named `objectName` in the TPM that holds `ek` (an RSA-2048 EK
 * with SHA-256 nameAlg and AES-128-CFB, the default template).
 */
export function makeCredential(ek: KeyObject, objectName: Buffer, credential: Buffer, seed: Buffer = randomBytes(32)): Credential {
  const secret = publicEncrypt({ key: ek, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from('IDENTITY\0', 'ascii') }, seed);
  const symKey = kdfa(seed, 'STORAGE', objectName, Buffer.alloc(0), 128);
  const cipher = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(tpm2b(credential)), cipher.final()]);
  const hmacKey = kdfa(seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 256);
  const integrity = createHmac('sha256', hmacKey).update(encIdentity).update(objectName).digest();
  return { credentialBlob: Buffer.concat([tpm2b(integrity), encIdentity]), secret };
}
