/**
 * Objects: TPM2_CreatePrimary, TPM2_Create, TPM2_Load, TPM2_ReadPublic (Part 3). A created object
 * comes back as the TPM's blobs (TPM2B_PRIVATE contents, TPMT_PUBLIC), the form tpm2_create writes
 * and spire-agent's devid_priv_path/devid_pub_path hold (without the 2-byte size prefix).
 */
import { CC } from '../constants.js';
import { Writer, type Reader } from '../marshal.js';
import { encodePublic, readPublicBlob, type PublicArea, type PublicBlob } from '../public-area.js';
import type { Command, Runner } from '../wire.js';
import { MAX_NAME, authorized, bytesOf, plain, readTicket, type Auth } from './common.js';

export interface CreateArgs {
  readonly template: PublicArea;
  /** The new object's password (TPM2B_AUTH: at most 64 bytes, the nameAlg's digest size in practice). */
  readonly userAuth?: Uint8Array | string;
  /** Data to seal in a keyedHash object (at most 128 bytes); empty for a key the TPM generates. */
  readonly data?: Uint8Array;
}

function creationParams(a: CreateArgs): Buffer {
  const sensitive = new Writer().tpm2b(bytesOf(a.userAuth), 'userAuth', 64).tpm2b(a.data ?? new Uint8Array(0), 'sealed data', 128);
  return new Writer()
    .sized(sensitive, 'inSensitive')
    .sized(encodePublic(new Writer(), a.template), 'inPublic')
    .tpm2b(new Uint8Array(0), 'outsideInfo')
    .u32(0) // creationPCR: an empty TPML_PCR_SELECTION
    .finish();
}

/** creationData, creationHash, creationTicket: read past, nobody here uses them. */
function skipCreation(r: Reader): void {
  r.tpm2b('creationData');
  r.tpm2b('creationHash', 64);
  readTicket(r, 'creationTicket');
}

export interface CreatedPrimary {
  readonly handle: number;
  readonly public: PublicBlob;
  readonly name: Buffer;
}

export function createPrimaryCommand(a: CreateArgs & { readonly hierarchy: number; readonly hierarchyAuth?: Auth }): Command<CreatedPrimary> {
  return {
    spec: { cc: CC.CreatePrimary, handles: [authorized(a.hierarchy, a.hierarchyAuth)], params: creationParams(a), responseHandles: 1 },
    parse({ handles, params: r }) {
      const pub = readPublicBlob(r, 'outPublic');
      skipCreation(r);
      const name = r.tpm2b('name', MAX_NAME);
      r.end();
      return { handle: handles[0]!, public: pub, name };
    },
  };
}

export async function createPrimary(tpm: Runner, a: Parameters<typeof createPrimaryCommand>[0], signal?: AbortSignal): Promise<CreatedPrimary> {
  return tpm.run(createPrimaryCommand(a), signal);
}

export interface CreatedObject {
  /** TPM2B_PRIVATE contents (no size prefix): the sensitive area, wrapped by the parent. */
  readonly private: Buffer;
  readonly public: PublicBlob;
}

export interface ParentArgs {
  readonly parent: number;
  readonly parentAuth?: Auth;
  readonly parentLabel?: string;
}

export function createCommand(a: CreateArgs & ParentArgs): Command<CreatedObject> {
  return {
    spec: { cc: CC.Create, handles: [authorized(a.parent, a.parentAuth, a.parentLabel ?? 'parent key')], params: creationParams(a), responseHandles: 0 },
    parse({ params: r }) {
      const priv = r.tpm2b('outPrivate');
      const pub = readPublicBlob(r, 'outPublic');
      skipCreation(r);
      r.end();
      return { private: priv, public: pub };
    },
  };
}

export async function create(tpm: Runner, a: Parameters<typeof createCommand>[0], signal?: AbortSignal): Promise<CreatedObject> {
  return tpm.run(createCommand(a), signal);
}

export interface Loaded {
  readonly handle: number;
  readonly name: Buffer;
}

export function loadCommand(a: ParentArgs & { readonly private: Uint8Array; readonly public: Uint8Array }): Command<Loaded> {
  const params = new Writer().tpm2b(a.private, 'inPrivate').tpm2b(a.public, 'inPublic').finish();
  return {
    spec: { cc: CC.Load, handles: [authorized(a.parent, a.parentAuth, a.parentLabel ?? 'parent key')], params, responseHandles: 1 },
    parse({ handles, params: r }) {
      const name = r.tpm2b('name', MAX_NAME);
      r.end();
      return { handle: handles[0]!, name };
    },
  };
}

export async function load(tpm: Runner, a: Parameters<typeof loadCommand>[0], signal?: AbortSignal): Promise<Loaded> {
  return tpm.run(loadCommand(a), signal);
}

export interface ReadPublicResult {
  readonly public: PublicBlob;
  readonly name: Buffer;
  readonly qualifiedName: Buffer;
}

export function readPublicCommand(handle: number, label?: string): Command<ReadPublicResult> {
  return {
    spec: { cc: CC.ReadPublic, handles: [plain(handle, label)], params: Buffer.alloc(0), responseHandles: 0 },
    parse({ params: r }) {
      const pub = readPublicBlob(r, 'outPublic');
      const name = r.tpm2b('name', MAX_NAME);
      const qualifiedName = r.tpm2b('qualifiedName', MAX_NAME);
      r.end();
      return { public: pub, name, qualifiedName };
    },
  };
}

export async function readPublic(tpm: Runner, handle: number, label?: string, signal?: AbortSignal): Promise<ReadPublicResult> {
  return tpm.run(readPublicCommand(handle, label), signal);
}
