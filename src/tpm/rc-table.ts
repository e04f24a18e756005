/**
 * The TPM 2.0 response codes (TCG TPM 2.0 Library, Part 2, TPM_RC) with what each means, in
 * our words. Keyed by the code without its handle/parameter/session number: format-zero codes
 * are RC_VER1 (0x100) + n, format-one codes RC_FMT1 (0x080) + n, warnings RC_WARN (0x900) + n.
 */
export const RC_VER1 = 0x100;
export const RC_FMT1 = 0x080;
export const RC_WARN = 0x900;

type Row = readonly [name: string, meaning: string];

const FORMAT0: Readonly<Record<number, Row>> = {
  0x000: ['INITIALIZE', 'the TPM has not been started (TPM2_Startup was not run)'],
  0x001: ['FAILURE', 'the TPM is in failure mode'],
  0x003: ['SEQUENCE', 'improper use of a sequence handle'],
  0x00b: ['PRIVATE', 'not currently used'],
  0x019: ['HMAC', 'not currently used'],
  0x020: ['DISABLED', 'the command is disabled'],
  0x021: ['EXCLUSIVE', 'the command failed because audit sequence required exclusivity'],
  0x024: ['AUTH_TYPE', 'the authorization handle is not correct for the command'],
  0x025: ['AUTH_MISSING', 'the command requires an authorization session for a handle and it is not present'],
  0x026: ['POLICY', 'the policy failure in math operation or an invalid authPolicy value'],
  0x027: ['PCR', 'the PCR check failed'],
  0x028: ['PCR_CHANGED', 'the PCRs changed since the policy session checked them'],
  0x02d: ['UPGRADE', 'the TPM is in field-upgrade mode'],
  0x02e: ['TOO_MANY_CONTEXTS', 'the context ID counter is at its maximum'],
  0x02f: ['AUTH_UNAVAILABLE', 'the authValue or authPolicy is not available for the selected entity'],
  0x030: ['REBOOT', 'the TPM must be reset (_TPM_Init and Startup(CLEAR)) before it can continue'],
  0x031: ['UNBALANCED', 'the protection algorithms (hash and symmetric) are not reasonably balanced'],
  0x042: ['COMMAND_SIZE', 'the command size does not match the bytes sent'],
  0x043: ['COMMAND_CODE', 'the TPM does not implement the command'],
  0x044: ['AUTHSIZE', 'the authorization area size is wrong'],
  0x045: ['AUTH_CONTEXT', 'a session was used for a command that cannot have one, or is missing where it must be'],
  0x046: ['NV_RANGE', 'the NV offset and size are out of the index\'s range'],
  0x047: ['NV_SIZE', 'the requested NV allocation is too large'],
  0x048: ['NV_LOCKED', 'the NV index is locked for reading or writing'],
  0x049: ['NV_AUTHORIZATION', 'the NV access authorization failed in a way that does not count toward lockout'],
  0x04a: ['NV_UNINITIALIZED', 'the NV index has never been written'],
  0x04b: ['NV_SPACE', 'there is not enough NV space for the index'],
  0x04c: ['NV_DEFINED', 'the NV index is already defined'],
  0x050: ['BAD_CONTEXT', 'the context in TPM2_ContextLoad is not valid'],
  0x051: ['CPHASH', 'cpHash is already set or does not match the command'],
  0x052: ['PARENT', 'the handle is not a valid parent'],
  0x053: ['NEEDS_TEST', 'a function needs testing before it can run'],
  0x054: ['NO_RESULT', 'an internal function could not produce a result'],
  0x055: ['SENSITIVE', 'the sensitive area did not unmarshal correctly after decryption (wrong parent or a damaged key blob)'],
};

const FORMAT1: Readonly<Record<number, Row>> = {
  0x001: ['ASYMMETRIC', 'the asymmetric algorithm is not supported or not correct'],
  0x002: ['ATTRIBUTES', 'an inconsistent attribute value'],
  0x003: ['HASH', 'the hash algorithm is not supported or not appropriate'],
  0x004: ['VALUE', 'a value is out of range or not correct for the context'],
  0x005: ['HIERARCHY', 'the hierarchy is not enabled or not correct for the use'],
  0x007: ['KEY_SIZE', 'the key size is not supported'],
  0x008: ['MGF', 'the mask generation function is not supported'],
  0x009: ['MODE', 'the mode of operation is not supported'],
  0x00a: ['TYPE', 'the type of the value is not appropriate for the use'],
  0x00b: ['HANDLE', 'the handle is not correct for the use (not loaded, or the wrong kind)'],
  0x00c: ['KDF', 'an unsupported key derivation function or one not appropriate for the use'],
  0x00d: ['RANGE', 'a value was out of the allowed range'],
  0x00e: ['AUTH_FAIL', 'the authorization check failed and the dictionary-attack counter was incremented'],
  0x00f: ['NONCE', 'an invalid nonce size or nonce value mismatch'],
  0x010: ['PP', 'the authorization requires assertion of physical presence'],
  0x012: ['SCHEME', 'an unsupported or incompatible scheme'],
  0x015: ['SIZE', 'a structure is the wrong size'],
  0x016: ['SYMMETRIC', 'an unsupported symmetric algorithm or key size, or not appropriate for the instance'],
  0x017: ['TAG', 'an incorrect structure tag'],
  0x018: ['SELECTOR', 'a union selector is incorrect'],
  0x01a: ['INSUFFICIENT', 'the TPM ran out of input: a size says more than the command holds'],
  0x01b: ['SIGNATURE', 'the signature is not valid'],
  0x01c: ['KEY', 'the key fields are not compatible with the selected use'],
  0x01d: ['POLICY_FAIL', 'a policy check failed'],
  0x01f: ['INTEGRITY', 'the integrity check failed (a key blob does not belong under this parent, or was altered)'],
  0x020: ['TICKET', 'an invalid ticket'],
  0x021: ['RESERVED_BITS', 'reserved bits are not set to zero as required'],
  0x022: ['BAD_AUTH', 'the authorization failed without dictionary-attack implications'],
  0x023: ['EXPIRED', 'the policy has expired'],
  0x024: ['POLICY_CC', 'the command code in the policy is not the command code of the command'],
  0x025: ['BINDING', 'the public and sensitive portions of an object are not cryptographically bound'],
  0x026: ['CURVE', 'the curve is not supported'],
  0x027: ['ECC_POINT', 'the point is not on the required curve'],
  0x028: ['FW_LIMITED', 'the command requires the firmware secret, which is not available'],
  0x029: ['SVN_LIMITED', 'the command requires the firmware SVN secret, which is not available'],
};

const WARNINGS: Readonly<Record<number, Row>> = {
  0x001: ['CONTEXT_GAP', 'the gap for context IDs is too large'],
  0x002: ['OBJECT_MEMORY', 'the TPM is out of memory for objects: too many are loaded'],
  0x003: ['SESSION_MEMORY', 'the TPM is out of memory for sessions'],
  0x004: ['MEMORY', 'the TPM is out of shared object/session memory'],
  0x005: ['SESSION_HANDLES', 'the TPM is out of session handles'],
  0x006: ['OBJECT_HANDLES', 'the TPM is out of object handles'],
  0x007: ['LOCALITY', 'a bad locality'],
  0x008: ['YIELDED', 'the TPM suspended the command; it can be sent again'],
  0x009: ['CANCELED', 'the command was cancelled'],
  0x00a: ['TESTING', 'the TPM is running its self-tests'],
  0x010: ['REFERENCE_H0', 'the 1st handle references a transient object or session that is not loaded'],
  0x011: ['REFERENCE_H1', 'the 2nd handle references a transient object or session that is not loaded'],
  0x012: ['REFERENCE_H2', 'the 3rd handle references a transient object or session that is not loaded'],
  0x013: ['REFERENCE_H3', 'the 4th handle references a transient object or session that is not loaded'],
  0x014: ['REFERENCE_H4', 'the 5th handle references a transient object or session that is not loaded'],
  0x015: ['REFERENCE_H5', 'the 6th handle references a transient object or session that is not loaded'],
  0x016: ['REFERENCE_H6', 'the 7th handle references a transient object or session that is not loaded'],
  0x018: ['REFERENCE_S0', 'the 1st authorization session is not loaded'],
  0x019: ['REFERENCE_S1', 'the 2nd authorization session is not loaded'],
  0x01a: ['REFERENCE_S2', 'the 3rd authorization session is not loaded'],
  0x01b: ['REFERENCE_S3', 'the 4th authorization session is not loaded'],
  0x01c: ['REFERENCE_S4', 'the 5th authorization session is not loaded'],
  0x01d: ['REFERENCE_S5', 'the 6th authorization session is not loaded'],
  0x01e: ['REFERENCE_S6', 'the 7th authorization session is not loaded'],
  0x020: ['NV_RATE', 'the TPM is rate-limiting NV writes to protect itself'],
  0x021: ['LOCKOUT', 'the TPM is in dictionary-attack lockout: authorizations of DA-protected objects are refused'],
  0x022: ['RETRY', 'the TPM was busy; the command can be sent again'],
  0x023: ['NV_UNAVAILABLE', 'NV memory is not available'],
};

/** [name without "TPM_RC_", meaning] of a base code, or undefined for one the spec does not list. */
export function lookupFormat0(e: number): Row | undefined {
  return FORMAT0[e];
}
export function lookupFormat1(e: number): Row | undefined {
  return FORMAT1[e];
}
export function lookupWarning(e: number): Row | undefined {
  return WARNINGS[e];
}
