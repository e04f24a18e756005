/** Pieces several commands share: labels for messages, authorizations, tickets. */
import { RH } from '../constants.js';
import type { Reader, Writer } from '../marshal.js';
import { password, type Authorization, type HandleArg } from '../wire.js';

export { MAX_NAME } from '../constants.js';

/** A password, or an authorization the caller built (a policy session). */
export type Auth = Uint8Array | string | Authorization;

export function authOf(auth: Auth | undefined): Authorization {
  if (auth === undefined || typeof auth === 'string' || auth instanceof Uint8Array) return password(auth ?? '');
  return auth;
}

const HIERARCHY_LABELS: Readonly<Record<number, string>> = {
  [RH.OWNER]: 'owner hierarchy',
  [RH.ENDORSEMENT]: 'endorsement hierarchy',
  [RH.PLATFORM]: 'platform hierarchy',
  [RH.LOCKOUT]: 'lockout hierarchy',
  [RH.NULL]: 'null hierarchy',
};

export function labelOf(handle: number, label?: string): string {
  return label ?? HIERARCHY_LABELS[handle] ?? `handle 0x${handle.toString(16).padStart(8, '0')}`;
}

export function authorized(handle: number, auth: Auth | undefined, label?: string): HandleArg {
  return { handle, label: labelOf(handle, label), auth: authOf(auth) };
}

export function plain(handle: number, label?: string): HandleArg {
  return { handle, label: labelOf(handle, label) };
}

/** TPMT_TK_HASHCHECK, TPMT_TK_CREATION, TPMT_TK_AUTH: a tag, a hierarchy and a digest. */
export interface Ticket {
  readonly tag: number;
  readonly hierarchy: number;
  readonly digest: Buffer;
}

export function readTicket(r: Reader, what: string): Ticket {
  return { tag: r.u16(`${what} tag`), hierarchy: r.u32(`${what} hierarchy`), digest: r.tpm2b(`${what} digest`, 64) };
}

export function writeTicket(w: Writer, t: Ticket): Writer {
  return w.u16(t.tag).u32(t.hierarchy).tpm2b(t.digest, 'ticket digest', 64);
}

export function bytesOf(v: Uint8Array | string | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}
