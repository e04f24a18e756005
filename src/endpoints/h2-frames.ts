/**
 * HTTP/2 wire constants and frame building shared by the gate (h2-gate.ts) and the :authority
 * filter's rewriter (h2-rewriter.ts). RFC 9113 §4.1 (frame layout), §6 (types and flags).
 */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const HEADERS = 0x1;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const ACK = 0x1;
export const CONTINUATION = 0x9;
export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY = 0x20;
/** RFC 3986 authority characters; nghttp2 refuses anything else (notably '/'). */
export const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%[\]]*$/;
export const UDS_AUTHORITY = 'localhost';

export function frameOf(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}
