/**
 * TPM2_Certify (Part 3): `signer` (an attestation key) signs a TPMS_ATTEST naming `object`,
 * proving both live in the same TPM. Both handles are authorized: the object with its ADMIN
 * role, the signer with its USER role; a password works for both when the object has no
 * adminWithPolicy (a DevID created with tpm2_create has none).
 */
import { CC } from '../constants.js';
import { Writer } from '../marshal.js';
import { NULL_SCHEME, type Scheme } from '../public-area.js';
import { readSignature, writeSigScheme, type Signature } from '../signature.js';
import type { Command, Runner } from '../wire.js';
import { authorized, type Auth } from './common.js';

export interface CertifyArgs {
  readonly object: number;
  readonly objectAuth?: Auth;
  readonly objectLabel?: string;
  readonly signer: number;
  readonly signerAuth?: Auth;
  readonly signerLabel?: string;
  readonly qualifyingData?: Uint8Array;
  /** NULL (the default) signs with the signer's own scheme. */
  readonly scheme?: Scheme;
}

export interface Certified {
  /** TPMS_ATTEST as signed (parseAttest reads it). */
  readonly attest: Buffer;
  readonly signature: Signature;
}

export function certifyCommand(a: CertifyArgs): Command<Certified> {
  const params = writeSigScheme(new Writer().tpm2b(a.qualifyingData ?? new Uint8Array(0), 'qualifyingData', 64), a.scheme ?? NULL_SCHEME).finish();
  return {
    spec: {
      cc: CC.Certify,
      handles: [authorized(a.object, a.objectAuth, a.objectLabel ?? 'certified object'), authorized(a.signer, a.signerAuth, a.signerLabel ?? 'attestation key')],
      params,
      responseHandles: 0,
    },
    parse({ params: r }) {
      const attest = r.tpm2b('certifyInfo');
      const signature = readSignature(r);
      r.end();
      return { attest, signature };
    },
  };
}

export async function certify(tpm: Runner, a: CertifyArgs, signal?: AbortSignal): Promise<Certified> {
  return tpm.run(certifyCommand(a), signal);
}
