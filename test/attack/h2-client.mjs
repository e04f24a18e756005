/**
 * A frame-level HTTP/2 client that speaks first like a real gRPC client (preface, SETTINGS,
 * ACK of the server's SETTINGS, a real FetchX509SVID request) and then does whatever an
 * attack asks. Plain Node and no project code, so it can do only what any local user can.
 * Frames are written raw (RFC 9113); header blocks are HPACK literals without indexing or
 * Huffman (RFC 7541 §6.2.2), which every decoder must accept.
 */
import net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const T = Object.freeze({ DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 });
export const FLAG = Object.freeze({ END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 });
export const FETCH_X509 = '/SpiffeWorkloadAPI/FetchX509SVID';

export function frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream >>> 0, 5);
  return payload.length ? Buffer.concat([h, payload]) : h;
}

/** RFC 7541 §5.1 integer with an n-bit prefix; `first` holds the pattern bits above the prefix. */
export function hpackInt(value, prefixBits, first = 0) {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Buffer.from(out);
}

/** Literal header field without indexing, new name (0x00), no Huffman. */
export function literal(name, value) {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v]);
}

/** The header block of a gRPC request, as go-spiffe sends it (grpc-java sends the socket path as :authority). */
export function grpcRequestBlock({ path = FETCH_X509, authority = 'localhost', extra = [] } = {}) {
  return Buffer.concat([
    literal(':method', 'POST'),
    literal(':scheme', 'http'),
    literal(':path', path),
    literal(':authority', authority),
    literal('content-type', 'application/grpc'),
    literal('te', 'trailers'),
    literal('workload.spiffe.io', 'true'),
    ...extra.map(([n, v]) => literal(n, v)),
  ]);
}

/** An empty gRPC message (FetchX509SVIDRequest has no fields): flag 0, length 0. */
export const EMPTY_GRPC_MESSAGE = Buffer.alloc(5);

/** A client connection that parses the server's frames and tallies what the server did. */
export class H2Conn {
  constructor(path) {
    this.path = path;
    this.rx = Buffer.alloc(0);
    this.settingsSeen = false;
    this.goaway = undefined;
    this.closed = false;
    this.error = undefined;
    this.sent = 0;
    this.framesIn = 0;
    /** stream id -> { headers, data, trailers, rst } */
    this.streams = new Map();
    this.waiters = [];
    this.autoAck = true;
    this.read = true;
  }

  connect() {
    return new Promise((resolve) => {
      const s = net.connect(this.path);
      this.socket = s;
      s.once('connect', () => resolve(this));
      s.on('error', (err) => {
        this.error ??= err.code ?? err.message;
        resolve(this);
      });
      s.on('close', () => {
        this.closed = true;
        this.wake();
      });
      s.on('data', (c) => this.onData(c));
    });
  }

  /** Stops reading: the kernel buffers fill and the server's writes back up (slow or abandoned reader). */
  stopReading() {
    this.read = false;
    this.socket.pause();
  }

  onData(chunk) {
    this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
    while (this.rx.length >= 9) {
      const len = this.rx.readUIntBE(0, 3);
      if (this.rx.length < 9 + len) break;
      const type = this.rx[3];
      const flags = this.rx[4];
      const id = this.rx.readUInt32BE(5) & 0x7fffffff;
      const p = this.rx.subarray(9, 9 + len);
      this.rx = this.rx.subarray(9 + len);
      this.framesIn++;
      if (type === T.SETTINGS && !(flags & FLAG.ACK)) {
        this.settingsSeen = true;
        if (this.autoAck) this.write(frame(T.SETTINGS, FLAG.ACK, 0));
      } else if (type === T.PING && !(flags & FLAG.ACK)) {
        // As every HTTP/2 client does on its own: the agent's keepalive then sees a live peer.
        if (this.autoAck) this.write(frame(T.PING, FLAG.ACK, 0, Buffer.from(p)));
      } else if (type === T.GOAWAY) {
        this.goaway ??= { lastStreamId: p.readUInt32BE(0) & 0x7fffffff, code: p.readUInt32BE(4) };
      } else if (type === T.HEADERS || type === T.DATA || type === T.RST_STREAM) {
        const st = this.streams.get(id) ?? { headers: 0, data: 0, dataBytes: 0, rst: undefined, ended: false };
        this.streams.set(id, st);
        if (type === T.HEADERS) st.headers++;
        if (type === T.DATA) {
          st.data++;
          st.dataBytes += len;
        }
        if (type === T.RST_STREAM) st.rst = p.readUInt32BE(0);
        if (flags & FLAG.END_STREAM || type === T.RST_STREAM) st.ended = true;
      }
    }
    this.wake();
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once pred() holds, the connection closes, or timeoutMs passes; returns pred(). */
  until(pred, timeoutMs) {
    return new Promise((resolve) => {
      const check = () => {
        if (pred() || this.closed) {
          clearTimeout(t);
          resolve(pred());
        } else this.waiters.push(check);
      };
      const t = setTimeout(() => resolve(pred()), timeoutMs);
      check();
    });
  }

  /** Writes, and resolves when the kernel took it (false if the connection closed or stayed full for stallMs). */
  write(buf, stallMs = 5_000) {
    if (this.closed || this.socket.destroyed) return Promise.resolve(false);
    this.sent += buf.length;
    if (this.socket.write(buf)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok) => {
        clearTimeout(t);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const t = setTimeout(() => done(false), stallMs);
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  /** Preface and SETTINGS, then waits for the server's SETTINGS (which it ACKs). */
  async handshake(settings = Buffer.alloc(0), timeoutMs = 10_000) {
    await this.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, settings)]));
    return this.until(() => this.settingsSeen, timeoutMs);
  }

  /** One real FetchX509SVID on `id`; resolves true once the server answered on it (response headers). */
  async fetchX509(id, { authority, timeoutMs = 20_000 } = {}) {
    await this.write(Buffer.concat([frame(T.HEADERS, FLAG.END_HEADERS, id, grpcRequestBlock({ authority })), frame(T.DATA, FLAG.END_STREAM, id, EMPTY_GRPC_MESSAGE)]));
    return this.until(() => (this.streams.get(id)?.headers ?? 0) > 0, timeoutMs);
  }

  destroy() {
    this.socket?.destroy();
  }
}
