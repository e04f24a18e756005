/**
 * TPM2_Hash and TPM2_Sign (Part 3). A restricted signing key signs only a digest the TPM computed
 * itself, proven by the hashcheck ticket TPM2_Hash returns; an unrestricted key (a DevID) takes
 * any digest with a NULL ticket, but spire-agent hashes in the TPM either way, and so do we.
 */
import { ALG, CC, HASHES, RH, ST } from '../constants.js';
import { TpmError } from '../errors.js';
import { Writer } from '../marshal.js';
import { NULL_SCHEME, type Scheme } from '../public-area.js';
import { readSignature, writeSigScheme, type Signature } from '../signature.js';
import type { Command, Runner } from '../wire.js';
import { authorized, readTicket, writeTicket, type Auth, type Ticket } from './common.js';

/** MAX_DIGEST_BUFFER: the most TPM2_Hash takes in one command. */
export const MAX_HASH_INPUT = 1024;

export interface HashResult {
  readonly digest: Buffer;
  readonly ticket: Ticket;
}

export function hashCommand(data: Uint8Array, hashAlg: number, hierarchy: number = RH.OWNER): Command<HashResult> {
  const params = new Writer().tpm2b(data, 'data to hash', MAX_HASH_INPUT).u16(hashAlg).u32(hierarchy).finish();
  return {
    spec: { cc: CC.Hash, handles: [], params, responseHandles: 0 },
    parse({ params: r }) {
      const digest = r.tpm2b('outHash', 64);
      const ticket = readTicket(r, 'validation');
      r.end();
      return { digest, ticket };
    },
  };
}

/** `hierarchy`: the one whose proof goes into the ticket; spire-agent uses the platform hierarchy. */
export async function hash(tpm: Runner, data: Uint8Array, hashAlg: number, hierarchy?: number, signal?: AbortSignal): Promise<HashResult> {
  return tpm.run(hashCommand(data, hashAlg, hierarchy), signal);
}

/** The ticket for a digest the TPM did not compute: accepted by unrestricted keys only. */
export const NULL_TICKET: Ticket = Object.freeze({ tag: ST.HASHCHECK, hierarchy: RH.NULL, digest: Buffer.alloc(0) });

export interface SignArgs {
  readonly key: number;
  readonly keyAuth?: Auth;
  readonly keyLabel?: string;
  readonly digest: Uint8Array;
  /** NULL (the default) signs with the key's own scheme. */
  readonly scheme?: Scheme;
  readonly ticket?: Ticket;
}

export function signCommand(a: SignArgs): Command<Signature> {
  const params = writeTicket(writeSigScheme(new Writer().tpm2b(a.digest, 'digest', 64), a.scheme ?? NULL_SCHEME), a.ticket ?? NULL_TICKET).finish();
  return {
    spec: { cc: CC.Sign, handles: [authorized(a.key, a.keyAuth, a.keyLabel ?? 'signing key')], params, responseHandles: 0 },
    parse({ params: r }) {
      const sig = readSignature(r);
      r.end();
      return sig;
    },
  };
}

export async function sign(tpm: Runner, a: SignArgs, signal?: AbortSignal): Promise<Signature> {
  return tpm.run(signCommand(a), signal);
}

/** Hashes `data` in the TPM, then signs the digest with the ticket: what tpm_devid answers a nonce with. */
export async function hashAndSign(tpm: Runner, a: Omit<SignArgs, 'digest' | 'ticket'> & { readonly data: Uint8Array; readonly hashAlg?: number; readonly hierarchy?: number }, signal?: AbortSignal): Promise<Signature> {
  const hashAlg = a.hashAlg ?? ALG.SHA256;
  if (!HASHES[hashAlg]) throw new TpmError('tpm_invalid_argument', `tpm: hash algorithm 0x${hashAlg.toString(16)} is not one the client knows`);
  const { digest, ticket } = await hash(tpm, a.data, hashAlg, a.hierarchy, signal);
  return sign(tpm, { ...a, digest, ticket }, signal);
}
