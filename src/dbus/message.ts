/**
 * D-Bus messages: a fixed 12-byte prologue, an array of (code, variant) header fields padded to
 * 8 bytes, then the body. Only what a method-call client (and a test service) needs.
 */
import { DBusError } from './errors.js';
import { WireReader, WireWriter, splitSignature as splitTypes, type Variant } from './wire.js';

export const MessageType = { MethodCall: 1, MethodReturn: 2, Error: 3, Signal: 4 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const Flags = { NoReplyExpected: 0x1, NoAutoStart: 0x2 } as const;

export interface Message {
  readonly type: MessageType;
  readonly flags: number;
  readonly serial: number;
  readonly path?: string | undefined;
  readonly interface?: string | undefined;
  readonly member?: string | undefined;
  readonly errorName?: string | undefined;
  readonly replySerial?: number | undefined;
  readonly destination?: string | undefined;
  readonly sender?: string | undefined;
  readonly signature: string;
  readonly body: readonly unknown[];
}

/** Header field codes and the type each must carry. */
const FIELDS = [
  [1, 'path', 'o'],
  [2, 'interface', 's'],
  [3, 'member', 's'],
  [4, 'errorName', 's'],
  [5, 'replySerial', 'u'],
  [6, 'destination', 's'],
  [7, 'sender', 's'],
  [8, 'signature', 'g'],
] as const;

/** The spec's limit; anything bigger is a broken or hostile peer. */
export const MAX_MESSAGE_BYTES = 128 * 1024 * 1024;

export function encodeMessage(m: Message): Buffer {
  const body = new WireWriter();
  const types = m.signature;
  if (types) {
    // Body alignment counts from the body start, which the header padding puts on an 8-byte boundary.
    const parts = splitTypes(types);
    if (parts.length !== m.body.length) throw new DBusError('dbus_protocol', `dbus: body has ${m.body.length} values for signature "${types}"`);
    parts.forEach((t, i) => body.value(t, m.body[i]));
  }
  const fields: [number, Variant][] = [];
  for (const [code, key, sig] of FIELDS) {
    const v = key === 'signature' ? (types || undefined) : m[key];
    if (v !== undefined) fields.push([code, { signature: sig, value: v }]);
  }
  const w = new WireWriter();
  w.byte(0x6c); // 'l': little-endian
  w.byte(m.type);
  w.byte(m.flags);
  w.byte(1);
  w.uint32(body.length);
  w.uint32(m.serial);
  w.value('a(yv)', fields);
  w.align(8);
  return Buffer.concat([w.toBuffer(), body.toBuffer()]);
}

/**
 * How many bytes the message at the start of `buf` occupies, or undefined if more bytes are needed.
 * Throws on a prologue we cannot accept.
 */
export function messageLength(buf: Buffer): number | undefined {
  if (buf.length < 16) return undefined;
  const le = endianness(buf);
  const bodyLen = le ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
  const fieldsLen = le ? buf.readUInt32LE(12) : buf.readUInt32BE(12);
  const headerLen = 16 + fieldsLen + ((8 - (fieldsLen % 8)) % 8);
  const total = headerLen + bodyLen;
  if (total > MAX_MESSAGE_BYTES) throw new DBusError('dbus_protocol', `dbus: message of ${total} bytes exceeds the protocol limit`);
  return buf.length >= total ? total : undefined;
}

function endianness(buf: Buffer): boolean {
  if (buf[0] === 0x6c) return true;
  if (buf[0] === 0x42) return false;
  throw new DBusError('dbus_protocol', `dbus: bad endianness marker 0x${(buf[0] ?? 0).toString(16)}`);
}

/** Decodes exactly one complete message (as sized by messageLength). */
export function decodeMessage(buf: Buffer): Message {
  const le = endianness(buf);
  const r = new WireReader(buf, le);
  r.byte();
  const type = r.byte();
  const flags = r.byte();
  const version = r.byte();
  if (version !== 1) throw new DBusError('dbus_protocol', `dbus: unsupported protocol version ${version}`);
  if (type < 1 || type > 4) throw new DBusError('dbus_protocol', `dbus: unknown message type ${type}`);
  const bodyLen = r.uint32();
  const serial = r.uint32();
  const out: Record<string, unknown> = { type, flags, serial, signature: '' };
  for (const item of r.value('a(yv)') as [number, Variant][]) {
    const [code, v] = item;
    const field = FIELDS.find((f) => f[0] === code);
    if (!field) continue; // unknown fields must be ignored (e.g. UNIX_FDS, future ones)
    if (v.signature !== field[2]) throw new DBusError('dbus_protocol', `dbus: header field ${code} has type "${v.signature}"`);
    out[field[1]] = v.value;
  }
  r.align(8);
  if (r.offset + bodyLen !== buf.length) throw new DBusError('dbus_protocol', 'dbus: body length does not match the message size');
  const signature = out['signature'] as string;
  const body = signature ? new WireReader(buf, le, r.offset).values(signature) : [];
  return { ...out, body } as unknown as Message;
}
