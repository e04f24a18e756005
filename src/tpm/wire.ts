/**
 * Command and response framing (TCG TPM 2.0 Library, Part 1 "Command/Response Structure"): header,
 * handle area, authorization area, parameters. Only password and policy sessions are sent: the
 * bus to the TPM is trusted, as spire-agent's tpm_devid assumes, so no HMAC or salted session is
 * needed, and no parameter is encrypted.
 */
import { HT, MAX_RESPONSE_SIZE, RH, SESSION_ATTR, ST, commandName, handleType } from './constants.js';
import { Reader, Writer } from './marshal.js';

/** One authorization: a password (TPM_RS_PW) or a policy session the caller started. */
export interface Authorization {
  readonly session: number;
  readonly attributes: number;
  /** The password for TPM_RS_PW; empty for a policy session that needs none. */
  readonly hmac: Uint8Array;
}

export function password(secret: Uint8Array | string = ''): Authorization {
  // continueSession on TPM_RS_PW has no effect but is what TSSs send.
  return { session: RH.PW, attributes: SESSION_ATTR.continueSession, hmac: typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret };
}

/** A policy session, consumed by the command (the TPM flushes it when the command succeeds). */
export function policy(session: number): Authorization {
  return { session, attributes: 0, hmac: new Uint8Array(0) };
}

export interface HandleArg {
  readonly handle: number;
  /** What the handle is, for messages: "owner hierarchy", "DevID key", "SRK". */
  readonly label: string;
  /** Present for the handles the command authorizes (the "@" handles of Part 3). */
  readonly auth?: Authorization;
}

export interface CommandSpec {
  readonly cc: number;
  readonly handles: readonly HandleArg[];
  readonly params: Buffer;
  /** Handles in the response's handle area: 1 for CreatePrimary, Load, StartAuthSession. */
  readonly responseHandles: 0 | 1;
}

export interface Response {
  readonly handles: readonly number[];
  readonly params: Reader;
}

/** A command with what turns its response into a result. */
export interface Command<T> {
  readonly spec: CommandSpec;
  parse(res: Response): T;
}

export function sessionsOf(spec: CommandSpec): Authorization[] {
  return spec.handles.flatMap((h) => (h.auth ? [h.auth] : []));
}

export function encodeCommand(spec: CommandSpec): Buffer {
  const sessions = sessionsOf(spec);
  const body = new Writer();
  for (const h of spec.handles) body.u32(h.handle);
  if (sessions.length > 0) {
    const area = new Writer();
    for (const s of sessions) area.u32(s.session).tpm2b(new Uint8Array(0), 'nonceCaller').u8(s.attributes).tpm2b(s.hmac, 'authorization value', 64);
    body.u32(area.size).bytes(area.finish());
  }
  body.bytes(spec.params);
  const header = new Writer()
    .u16(sessions.length > 0 ? ST.SESSIONS : ST.NO_SESSIONS)
    .u32(10 + body.size)
    .u32(spec.cc);
  return Buffer.concat([header.finish(), body.finish()]);
}

/** The size a response header announces, or a typed error; `bytes` holds at least 10 bytes. */
export function announcedSize(bytes: Buffer, cc: number): number {
  const r = new Reader(bytes.subarray(0, 10), `${commandName(cc)} response`);
  r.u16('tag');
  const size = r.u32('responseSize');
  if (size < 10) throw r.malformed(`responseSize ${size} is smaller than the 10-byte header`);
  if (size > MAX_RESPONSE_SIZE) throw r.malformed(`responseSize ${size} is over the ${MAX_RESPONSE_SIZE}-byte limit`);
  return size;
}

/**
 * Splits a whole response. A non-zero response code comes back as `{ ok: false, rc }` for the client to
 * explain; anything that is not a well-formed response to `spec` is tpm_malformed_response.
 */
export type Decoded = { readonly ok: false; readonly rc: number } | { readonly ok: true; readonly response: Response };

export function decodeResponse(bytes: Buffer, spec: CommandSpec): Decoded {
  const r = new Reader(bytes, `${commandName(spec.cc)} response`);
  const tag = r.u16('tag');
  const size = r.u32('responseSize');
  const rc = r.u32('responseCode');
  if (size !== bytes.length) throw r.malformed(`responseSize says ${size} bytes, ${bytes.length} arrived`);
  if (tag !== ST.NO_SESSIONS && tag !== ST.SESSIONS && !(tag === ST.RSP_COMMAND && rc !== 0)) throw r.malformed(`tag 0x${tag.toString(16)} is not a TPM 2.0 response tag`);
  if (rc !== 0) {
    // An error response is the header alone (Part 1: "no handles or parameters are returned").
    r.end();
    return { ok: false, rc };
  }
  const sessions = sessionsOf(spec);
  if ((tag === ST.SESSIONS) !== sessions.length > 0) throw r.malformed(`tag 0x${tag.toString(16)} does not match the ${sessions.length} session(s) sent`);
  const handles: number[] = [];
  for (let i = 0; i < spec.responseHandles; i++) {
    const h = r.u32('response handle');
    const t = handleType(h);
    if (t !== HT.TRANSIENT && t !== HT.HMAC_SESSION && t !== HT.POLICY_SESSION) throw r.malformed(`returned handle 0x${h.toString(16)} is not a transient object or a session`);
    handles.push(h);
  }
  if (sessions.length === 0) return { ok: true, response: { handles, params: r.sub(r.remaining, 'parameters') } };
  const paramSize = r.u32('parameterSize');
  const params = r.sub(paramSize, 'parameters');
  for (let i = 0; i < sessions.length; i++) {
    r.tpm2b(`session ${i + 1} nonceTPM`, 64);
    r.u8(`session ${i + 1} attributes`);
    r.tpm2b(`session ${i + 1} acknowledgment`, 64);
  }
  r.end();
  return { ok: true, response: { handles, params } };
}

/** What runs commands: the TpmClient. Commands take this, not the client, to keep imports one way. */
export interface Runner {
  run<T>(cmd: Command<T>, signal?: AbortSignal): Promise<T>;
}
