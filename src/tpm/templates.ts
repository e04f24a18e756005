/**
 * Object templates that must match, bit for bit, the ones spire-agent v1.13.3 uses (through
 * go-tpm-tools v0.4.6): a primary key is derived from the hierarchy's seed and its template, so a
 * different bit gives a different key, and a DevID blob made under spire-agent's SRK will not load.
 * Sources: TCG EK Credential Profile (templates L-1, H-1, H-2), TCG TPM v2.0 Provisioning Guidance.
 */
import { createHash } from 'node:crypto';
import { ALG, CC, ECC_CURVE, OBJECT_ATTR as A, RH } from './constants.js';
import { NULL_SCHEME, NULL_SYM, type ECCPublic, type KeyedHashPublic, type RSAPublic, type SymDef } from './public-area.js';

const AES128_CFB: SymDef = { algorithm: ALG.AES, keyBits: 128, mode: ALG.CFB };

/** Storage keys: restricted decryption keys that can be parents. */
const STORAGE = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.decrypt;
const SIGNER = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign;

/**
 * The SRK spire-agent recreates under the owner hierarchy for an RSA DevID: the EK profile's
 * high-range template H-1 (empty unique, noDA). tpm2_createprimary -C o -g sha256
 * -G rsa2048:null:aes128cfb -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda'
 * gives the same key.
 */
export function srkTemplateHighRSA(): RSAPublic {
  return { type: ALG.RSA, nameAlg: ALG.SHA256, attributes: STORAGE | A.noDA, authPolicy: new Uint8Array(0), symmetric: AES128_CFB, scheme: NULL_SCHEME, keyBits: 2048, exponent: 0, unique: new Uint8Array(0) };
}

/** H-2, the SRK for an ECC DevID (NIST P-256). */
export function srkTemplateHighECC(): ECCPublic {
  return { type: ALG.ECC, nameAlg: ALG.SHA256, attributes: STORAGE | A.noDA, authPolicy: new Uint8Array(0), symmetric: AES128_CFB, scheme: NULL_SCHEME, curve: ECC_CURVE.NIST_P256, kdf: NULL_SCHEME, x: new Uint8Array(0), y: new Uint8Array(0) };
}

/** go-tpm-tools' AKTemplateRSA: a restricted RSASSA/SHA-256 signing key; spire-agent's AK is always this one. */
export function akTemplateRSA(): RSAPublic {
  return { type: ALG.RSA, nameAlg: ALG.SHA256, attributes: SIGNER | A.restricted, authPolicy: new Uint8Array(0), symmetric: NULL_SYM, scheme: { scheme: ALG.RSASSA, hash: ALG.SHA256 }, keyBits: 2048, exponent: 0, unique: new Uint8Array(0) };
}

/**
 * The policy digest of PolicySecret(entity) with no policyRef, from an empty policy (Part 3,
 * TPM2_PolicySecret: PolicyUpdate hashes the command code and the entity's Name, then policyRef).
 */
export function policySecretDigest(entity: number): Buffer {
  const cc = Buffer.alloc(8);
  cc.writeUInt32BE(CC.PolicySecret, 0);
  cc.writeUInt32BE(entity, 4); // a permanent handle's Name is the handle
  const first = createHash('sha256').update(Buffer.alloc(32)).update(cc).digest();
  return createHash('sha256').update(first).digest();
}

/**
 * The default RSA EK (template L-1): no userWithAuth, so using it needs the PolicySecret(endorsement)
 * session; unique is 256 zero bytes. The key matches the one the EK certificate at 0x01c00002 is for.
 */
export function ekTemplateRSA(): RSAPublic {
  return {
    type: ALG.RSA,
    nameAlg: ALG.SHA256,
    attributes: (STORAGE | A.adminWithPolicy) & ~A.userWithAuth,
    authPolicy: policySecretDigest(RH.ENDORSEMENT),
    symmetric: AES128_CFB,
    scheme: NULL_SCHEME,
    keyBits: 2048,
    exponent: 0,
    unique: new Uint8Array(256),
  };
}

/** An unrestricted RSA signing key with a password: the DevID shape (tpm2_create -G rsa2048:rsassa-sha256:null). */
export function signingKeyTemplateRSA(hash: number = ALG.SHA256): RSAPublic {
  return { type: ALG.RSA, nameAlg: ALG.SHA256, attributes: SIGNER, authPolicy: new Uint8Array(0), symmetric: NULL_SYM, scheme: { scheme: ALG.RSASSA, hash }, keyBits: 2048, exponent: 0, unique: new Uint8Array(0) };
}

/** An unrestricted ECDSA P-256 signing key. */
export function signingKeyTemplateECC(hash: number = ALG.SHA256): ECCPublic {
  return { type: ALG.ECC, nameAlg: ALG.SHA256, attributes: SIGNER, authPolicy: new Uint8Array(0), symmetric: NULL_SYM, scheme: { scheme: ALG.ECDSA, hash }, curve: ECC_CURVE.NIST_P256, kdf: NULL_SCHEME, x: new Uint8Array(0), y: new Uint8Array(0) };
}

/**
 * A sealed data object: keyedHash with a NULL scheme, its data supplied by the caller (so no
 * sensitiveDataOrigin), released by TPM2_Unseal to whoever has its password. Without noDA, a wrong
 * password counts toward lockout, which is what guards a short password.
 */
export function sealedDataTemplate(): KeyedHashPublic {
  return { type: ALG.KEYEDHASH, nameAlg: ALG.SHA256, attributes: A.fixedTPM | A.fixedParent | A.userWithAuth, authPolicy: new Uint8Array(0), scheme: NULL_SCHEME, unique: new Uint8Array(0) };
}
