/**
 * Numbers from the TCG TPM 2.0 Library, Part 2 (Structures): only those the commands in
 * src/tpm use. Names follow the spec without their prefix (TPM_CC_CreatePrimary is
 * CC.CreatePrimary) so a reader can look each one up.
 */

/** TPM_ST: the tags of commands, responses and some structures. */
export const ST = {
  RSP_COMMAND: 0x00c4,
  NULL: 0x8000,
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_CREATION: 0x801a,
  CREATION: 0x8021,
  VERIFIED: 0x8022,
  HASHCHECK: 0x8024,
} as const;

/** TPM_CC: command codes. */
export const CC = {
  NV_Read: 0x0000014e,
  CreatePrimary: 0x00000131,
  Create: 0x00000153,
  Load: 0x00000157,
  Certify: 0x00000148,
  ActivateCredential: 0x00000147,
  PolicySecret: 0x00000151,
  Unseal: 0x0000015e,
  Sign: 0x0000015d,
  FlushContext: 0x00000165,
  NV_ReadPublic: 0x00000169,
  ReadPublic: 0x00000173,
  StartAuthSession: 0x00000176,
  GetCapability: 0x0000017a,
  Hash: 0x0000017d,
} as const;
export type CommandCode = (typeof CC)[keyof typeof CC];

/** The command's name for messages: "TPM2_CreatePrimary". */
export function commandName(cc: number): string {
  for (const [name, code] of Object.entries(CC)) if (code === cc) return `TPM2_${name}`;
  return `TPM2 command 0x${cc.toString(16).padStart(8, '0')}`;
}

/** TPM_ALG_ID. */
export const ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** Digest size of each hash the client handles, and its node:crypto name. */
export const HASHES: Readonly<Record<number, { readonly size: number; readonly node: string }>> = {
  [ALG.SHA1]: { size: 20, node: 'sha1' },
  [ALG.SHA256]: { size: 32, node: 'sha256' },
  [ALG.SHA384]: { size: 48, node: 'sha384' },
  [ALG.SHA512]: { size: 64, node: 'sha512' },
};

/** TPM_ECC_CURVE. */
export const ECC_CURVE = { NIST_P256: 0x0003, NIST_P384: 0x0004, NIST_P521: 0x0005 } as const;

/** Permanent handles (TPM_RH / TPM_RS). */
export const RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** The top byte of a handle says what it names (TPM_HT). */
export const HT = {
  NV_INDEX: 0x01,
  HMAC_SESSION: 0x02,
  POLICY_SESSION: 0x03,
  PERMANENT: 0x40,
  TRANSIENT: 0x80,
  PERSISTENT: 0x81,
} as const;

export function handleType(handle: number): number {
  return handle >>> 24;
}

/** TPM_SE: session types. */
export const SE = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

/** TPMA_SESSION bits. */
export const SESSION_ATTR = { continueSession: 0x01 } as const;

/** TPMA_OBJECT bits. */
export const OBJECT_ATTR = {
  fixedTPM: 0x00000002,
  stClear: 0x00000004,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  adminWithPolicy: 0x00000080,
  noDA: 0x00000400,
  encryptedDuplication: 0x00000800,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
} as const;

/** TPM_CAP and the TPM_PT properties the client asks for. */
export const CAP = { HANDLES: 0x00000001, TPM_PROPERTIES: 0x00000006 } as const;
export const PT = {
  MANUFACTURER: 0x00000105,
  INPUT_BUFFER: 0x0000010d,
  MAX_RESPONSE_SIZE: 0x0000011f,
  NV_BUFFER_MAX: 0x0000012c,
  LOCKOUT_COUNTER: 0x0000020e,
  MAX_AUTH_FAIL: 0x0000020f,
  LOCKOUT_INTERVAL: 0x00000210,
  LOCKOUT_RECOVERY: 0x00000211,
} as const;

/** The first handle of each range, for GetCapability(HANDLES). */
export const HANDLE_RANGE = { TRANSIENT: 0x80000000, LOADED_SESSION: 0x02000000, PERSISTENT: 0x81000000, NV_INDEX: 0x01000000 } as const;

/** NV index of the RSA EK certificate (TCG EK Credential Profile; spire-agent's tpm_devid reads it). */
export const EK_CERT_NV_INDEX_RSA = 0x01c00002;

/**
 * Ceiling on a response the client reads. TPMs announce their own limit (TPM_PT_MAX_RESPONSE_SIZE,
 * 4096 on swtpm and every discrete TPM seen); twice that leaves room for a larger one while a peer
 * that announces megabytes is refused before the client waits for them.
 */
export const MAX_RESPONSE_SIZE = 8192;

/** TPM2B_NAME: a handle (4 bytes) or a hash algorithm and its digest (at most 2 + 64 bytes). */
export const MAX_NAME = 66;
