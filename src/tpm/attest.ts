/**
 * TPMS_ATTEST (Part 2), what TPM2_Certify signs. Only the certify form is taken apart, the one
 * tpm_devid uses: the certified object's Name is what the SPIRE server compares with the DevID's.
 */
import { MAX_NAME, ST } from './constants.js';
import { Reader } from './marshal.js';

/** TPM_GENERATED_VALUE: "\xffTCG", marks data the TPM itself produced. */
export const TPM_GENERATED = 0xff544347;

export interface Attest {
  readonly type: number;
  readonly qualifiedSigner: Buffer;
  readonly extraData: Buffer;
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
  readonly firmwareVersion: bigint;
  /** For ST.ATTEST_CERTIFY. */
  readonly certified?: { readonly name: Buffer; readonly qualifiedName: Buffer };
}

export function parseAttest(bytes: Uint8Array): Attest {
  const r = Reader.of(bytes, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED) throw r.malformed(`magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE: not produced by a TPM`);
  const type = r.u16('type');
  const head = {
    type,
    qualifiedSigner: r.tpm2b('qualifiedSigner', MAX_NAME),
    extraData: r.tpm2b('extraData', 64),
    clock: r.u64('clock'),
    resetCount: r.u32('resetCount'),
    restartCount: r.u32('restartCount'),
    safe: r.u8('safe') !== 0,
    firmwareVersion: r.u64('firmwareVersion'),
  };
  if (type !== ST.ATTEST_CERTIFY) return head;
  const certified = { name: r.tpm2b('certified name', MAX_NAME), qualifiedName: r.tpm2b('certified qualifiedName', MAX_NAME) };
  r.end();
  return { ...head, certified };
}
