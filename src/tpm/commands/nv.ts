/**
 * TPM2_NV_ReadPublic and TPM2_NV_Read (Part 3). An NV index is read in pieces no larger than the
 * TPM's TPM_PT_NV_BUFFER_MAX (1024 on swtpm, smaller on some hardware), as go-tpm's NVRead does:
 * an EK certificate is often larger than one piece.
 */
import { CC, MAX_NAME, PT } from '../constants.js';
import { TpmError } from '../errors.js';
import { Writer } from '../marshal.js';
import type { Command, Runner } from '../wire.js';
import { getProperty } from './capability.js';
import { authorized, plain, type Auth } from './common.js';

export interface NVPublic {
  readonly index: number;
  readonly nameAlg: number;
  /** TPMA_NV bits. */
  readonly attributes: number;
  readonly authPolicy: Buffer;
  readonly dataSize: number;
  readonly name: Buffer;
}

export function nvReadPublicCommand(index: number): Command<NVPublic> {
  return {
    spec: { cc: CC.NV_ReadPublic, handles: [plain(index, `NV index 0x${index.toString(16)}`)], params: Buffer.alloc(0), responseHandles: 0 },
    parse({ params: r }) {
      const pub = r.sized('nvPublic');
      const area = { index: pub.u32('nvIndex'), nameAlg: pub.u16('nameAlg'), attributes: pub.u32('attributes'), authPolicy: pub.tpm2b('authPolicy', 64), dataSize: pub.u16('dataSize') };
      pub.end();
      if (area.index !== index) throw r.malformed(`the public area is for index 0x${area.index.toString(16)}, not 0x${index.toString(16)}`);
      const name = r.tpm2b('nvName', MAX_NAME);
      r.end();
      return { ...area, name };
    },
  };
}

export async function nvReadPublic(tpm: Runner, index: number, signal?: AbortSignal): Promise<NVPublic> {
  return tpm.run(nvReadPublicCommand(index), signal);
}

export interface NVReadArgs {
  readonly index: number;
  /** Who authorizes the read: the index itself (the default, as spire-agent does), or RH.OWNER. */
  readonly authHandle?: number;
  readonly auth?: Auth;
}

export function nvReadCommand(a: NVReadArgs & { readonly size: number; readonly offset: number }): Command<Buffer> {
  const params = new Writer().u16(a.size).u16(a.offset).finish();
  const label = `NV index 0x${a.index.toString(16)}`;
  const authHandle = a.authHandle ?? a.index;
  return {
    spec: { cc: CC.NV_Read, handles: [authorized(authHandle, a.auth, authHandle === a.index ? label : undefined), plain(a.index, label)], params, responseHandles: 0 },
    parse({ params: r }) {
      const data = r.tpm2b('data', a.size);
      r.end();
      if (data.length !== a.size) throw r.malformed(`asked for ${a.size} bytes at offset ${a.offset}, got ${data.length}`);
      return data;
    },
  };
}

/** The whole index, in pieces of at most `chunk` bytes (default: the TPM's TPM_PT_NV_BUFFER_MAX). */
export async function nvRead(tpm: Runner, a: NVReadArgs & { readonly chunk?: number }, signal?: AbortSignal): Promise<Buffer> {
  const chunk = a.chunk ?? (await getProperty(tpm, PT.NV_BUFFER_MAX, signal)) ?? 512;
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > 0xffff) throw new TpmError('tpm_invalid_argument', `tpm: NV read size ${chunk} is not between 1 and 65535`);
  const { dataSize } = await nvReadPublic(tpm, a.index, signal);
  const parts: Buffer[] = [];
  for (let offset = 0; offset < dataSize; ) {
    const size = Math.min(chunk, dataSize - offset);
    parts.push(await tpm.run(nvReadCommand({ ...a, size, offset }), signal));
    offset += size;
  }
  return Buffer.concat(parts);
}
