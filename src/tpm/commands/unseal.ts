/**
 * TPM2_Unseal (Part 3): the data a keyedHash object sealed (created by TPM2_Create with `data`).
 * What a TPM-sealed key manager keeps in the TPM: at most 128 bytes, so a key-encryption key,
 * not a private key itself.
 */
import { CC } from '../constants.js';
import type { Command, Runner } from '../wire.js';
import { authorized, type Auth } from './common.js';

export function unsealCommand(item: number, auth?: Auth, label = 'sealed object'): Command<Buffer> {
  return {
    spec: { cc: CC.Unseal, handles: [authorized(item, auth, label)], params: Buffer.alloc(0), responseHandles: 0 },
    parse({ params: r }) {
      const data = r.tpm2b('outData', 128);
      r.end();
      return data;
    },
  };
}

export async function unseal(tpm: Runner, item: number, auth?: Auth, label?: string, signal?: AbortSignal): Promise<Buffer> {
  return tpm.run(unsealCommand(item, auth, label), signal);
}
