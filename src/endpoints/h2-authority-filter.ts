/**
 * grpc-java, and so java-spiffe, sends the socket path as the HTTP/2 `:authority` on Unix
 * sockets. Node's HTTP/2 layer (nghttp2) rejects such a request with PROTOCOL_ERROR before
 * any gRPC code sees it, while spire-agent (Go) accepts it. This filter sits between the
 * client's socket and the gRPC server and rewrites an `:authority` that is not a valid
 * RFC 3986 authority to "localhost", what grpc-go and Kubernetes send on Unix sockets.
 *
 * Header blocks are decoded with an HPACK decoder that follows the client's encoder and
 * re-encoded with our own encoder that the server's decoder follows, so both dynamic
 * tables stay consistent whatever is rewritten. Every other frame, and everything the
 * server sends, passes through untouched. A connection that does not open with the
 * HTTP/2 preface is passed through as is.
 */
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { SpiffeAgentError } from '../errors.js';
import type { Libc } from '../proc/libc.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';

interface HpackHeader {
  name: string;
  value: string;
  neverIndex?: boolean;
}
interface HpackStream {
  write(data: Buffer | HpackHeader[]): void;
  read(): (Buffer & HpackHeader) | null;
  execute?(): void;
}
interface HpackModule {
  decompressor: { create(o: { table: { size: number } }): HpackStream };
  compressor: { create(o: { table: { size: number } }): HpackStream };
}

const hpack = createRequire(import.meta.url)('hpack.js') as HpackModule;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** SETTINGS_MAX_FRAME_SIZE and SETTINGS_HEADER_TABLE_SIZE defaults, which Node's server keeps. */
const MAX_FRAME = 16_384;
const TABLE_SIZE = 4_096;
/** RFC 3986 authority characters; nghttp2 refuses anything else (notably '/'). */
const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%[\]]*$/;
export const UDS_AUTHORITY = 'localhost';

export class H2ProtocolError extends SpiffeAgentError<'h2_protocol'> {
  constructor(message: string) {
    super('h2_protocol', message);
  }
}

interface PendingBlock {
  streamId: number;
  endStream: boolean;
  priority: Buffer | undefined;
  fragments: Buffer[];
}

/** The client→server byte stream, frame by frame. Pure: bytes in, bytes out. */
export class AuthorityRewriter {
  private buf: Buffer = Buffer.alloc(0);
  private state: 'preface' | 'frames' | 'passthrough' = 'preface';
  private pending: PendingBlock | undefined;
  private readonly decoder = hpack.decompressor.create({ table: { size: TABLE_SIZE } });
  private readonly encoder = hpack.compressor.create({ table: { size: TABLE_SIZE } });
  /** The first rewritten authority, for one log line per connection. */
  rewrittenFrom: string | undefined;

  push(chunk: Buffer): Buffer[] {
    if (this.state === 'passthrough') return [chunk];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    if (this.state === 'preface') {
      const n = Math.min(this.buf.length, PREFACE.length);
      if (!this.buf.subarray(0, n).equals(PREFACE.subarray(0, n))) {
        this.state = 'passthrough';
        const all = this.buf;
        this.buf = Buffer.alloc(0);
        return [all];
      }
      if (this.buf.length < PREFACE.length) return out;
      out.push(this.buf.subarray(0, PREFACE.length));
      this.buf = this.buf.subarray(PREFACE.length);
      this.state = 'frames';
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const frame = this.buf.subarray(0, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      out.push(...this.frame(frame));
    }
    return out;
  }

  private frame(frame: Buffer): Buffer[] {
    const type = frame[3]!;
    const flags = frame[4]!;
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    const payload = frame.subarray(9);
    if (this.pending && type !== CONTINUATION) throw new H2ProtocolError('expected CONTINUATION');
    if (type === HEADERS) {
      let off = 0;
      let pad = 0;
      if (flags & PADDED) {
        pad = payload[0] ?? 0;
        off = 1;
      }
      const priority = flags & PRIORITY ? Buffer.from(payload.subarray(off, off + 5)) : undefined;
      if (priority) off += 5;
      if (off + pad > payload.length) throw new H2ProtocolError('HEADERS padding exceeds the frame');
      this.pending = { streamId, endStream: (flags & END_STREAM) !== 0, priority, fragments: [Buffer.from(payload.subarray(off, payload.length - pad))] };
    } else if (type === CONTINUATION) {
      if (!this.pending || this.pending.streamId !== streamId) throw new H2ProtocolError('unexpected CONTINUATION');
      this.pending.fragments.push(Buffer.from(payload));
    } else {
      return [Buffer.from(frame)];
    }
    if (!(flags & END_HEADERS)) return [];
    const block = this.pending;
    this.pending = undefined;
    return this.reencode(block);
  }

  private reencode(block: PendingBlock): Buffer[] {
    const headers: HpackHeader[] = [];
    try {
      this.decoder.write(Buffer.concat(block.fragments));
      this.decoder.execute?.();
      for (let h = this.decoder.read(); h; h = this.decoder.read()) headers.push({ name: h.name, value: h.value, neverIndex: h.neverIndex ?? false });
    } catch (err) {
      throw new H2ProtocolError(`HPACK: ${(err as Error).message}`);
    }
    for (const h of headers) {
      if (h.name === ':authority' && !VALID_AUTHORITY.test(h.value)) {
        this.rewrittenFrom ??= h.value;
        h.value = UDS_AUTHORITY;
      }
    }
    this.encoder.write(headers);
    const parts: Buffer[] = [];
    for (let c = this.encoder.read(); c; c = this.encoder.read()) parts.push(c);
    const encoded = Buffer.concat(parts);
    const frames: Buffer[] = [];
    const first = Math.min(encoded.length, MAX_FRAME - (block.priority ? 5 : 0));
    frames.push(
      frameOf(
        HEADERS,
        (block.endStream ? END_STREAM : 0) | (block.priority ? PRIORITY : 0) | (first === encoded.length ? END_HEADERS : 0),
        block.streamId,
        block.priority ? Buffer.concat([block.priority, encoded.subarray(0, first)]) : encoded.subarray(0, first),
      ),
    );
    for (let off = first; off < encoded.length; off += MAX_FRAME) {
      const end = Math.min(encoded.length, off + MAX_FRAME);
      frames.push(frameOf(CONTINUATION, end === encoded.length ? END_HEADERS : 0, block.streamId, encoded.subarray(off, end)));
    }
    return frames;
  }
}

function frameOf(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/**
 * Puts the rewriter between `client` and a new socket of a kernel socketpair, and returns
 * the other end for the gRPC server. Both ends are real sockets, so the server sees an
 * ordinary connection (and the caller is still identified on `client`, before this).
 */
export function interposeAuthorityFilter(client: Socket, libc: Libc, log: Logger): Socket {
  const [a, b] = libc.socketpair();
  const toServer = new Socket({ fd: a, readable: true, writable: true });
  const serverSide = new Socket({ fd: b, readable: true, writable: true });
  const rewriter = new AuthorityRewriter();
  let logged = false;
  client.on('data', (chunk: Buffer) => {
    let out: Buffer[];
    try {
      out = rewriter.push(chunk);
    } catch (err) {
      log.warn({ [F.error]: (err as Error).message }, 'Dropping a connection with malformed HTTP/2 header frames');
      client.destroy();
      return;
    }
    if (!logged && rewriter.rewrittenFrom !== undefined) {
      logged = true;
      log.debug({ authority: rewriter.rewrittenFrom }, 'Client sent a non-RFC :authority (a socket path); serving it as localhost');
    }
    for (const c of out) if (!toServer.write(c)) client.pause();
  });
  toServer.on('drain', () => client.resume());
  toServer.on('data', (chunk: Buffer) => {
    if (!client.write(chunk)) toServer.pause();
  });
  client.on('drain', () => toServer.resume());
  client.on('end', () => toServer.end());
  toServer.on('end', () => client.end());
  client.on('close', () => toServer.destroy());
  toServer.on('close', () => client.destroy());
  client.on('error', () => {});
  toServer.on('error', () => {});
  serverSide.on('error', () => {});
  return serverSide;
}
