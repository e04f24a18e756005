/**
 * The guard between nghttp2 and grpc-js's stream handler (src/endpoints/h2-sessions.ts). The
 * faults it prevents are reachable only from inside nghttp2's receive loop, where Node runs a
 * session's 'stream' and stream 'close' events: a session destroyed there corrupts nghttp2
 * (runaway allocation, or Node's allocation-size assertion aborting), and grpc-js responding to
 * a stream destroyed there throws. The attack suite (test/integration/attack-h2.test.ts) shows
 * the crashes against the real daemon; these tests pin the mechanism: where a session is
 * destroyed, and which streams reach the gRPC handler. Sessions and streams are FAKE where a
 * real one cannot be put in the state needed (a 'stream' event for an already destroyed
 * stream); the first test uses a real HTTP/2 server and a real client's bytes.
 */
import http2, { type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { guardSessions } from '../../../src/endpoints/h2-sessions.js';
import { DEFAULT_H2_LIMITS, H2Code, type H2Limits } from '../../../src/endpoints/h2-limits.js';
import { systemClock } from '../../../src/clock.js';
import { memoryLogger } from '../../helpers/request-path.js';
import { PREFACE, clientEncoder, frame } from '../../helpers/h2-frames.js';

const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const END_HEADERS = 0x4;
const END_STREAM = 0x1;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const request = (path: string) =>
  clientEncoder()([
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: path },
    { name: ':authority', value: 'localhost' },
    { name: 'content-type', value: 'application/grpc' },
  ]);

describe('guardSessions on a real HTTP/2 server', () => {
  it("defers every session's destroy() to a later macrotask, whoever calls it, and stops reading at once", async () => {
    const server = http2.createServer();
    guardSessions(server, DEFAULT_H2_LIMITS, systemClock, () => {}, memoryLogger());
    // Whether the session was destroyed right away, and whether its connection was still being read.
    const seen: { sync: boolean; reading: boolean | undefined }[] = [];
    // As Node does from inside its receive path after an nghttp2 error, and grpc-js on keepalive.
    server.on('stream', (stream) => {
      const session = stream.session as ServerHttp2Session;
      const handle = (session.socket as unknown as { _handle: { readStop: () => number } })._handle;
      const readStop = handle.readStop;
      let stopped = false;
      handle.readStop = function (this: unknown) {
        stopped = true;
        return readStop.call(this);
      };
      session.destroy();
      seen.push({ sync: session.destroyed, reading: !stopped });
      setImmediate(() => seen.push({ sync: session.destroyed, reading: undefined }));
    });
    const path = join(mkdtempSync(join(tmpdir(), 'h2-sessions-')), 's');
    await new Promise<void>((r) => server.listen(path, r));
    cleanups.push(() => void server.close());
    const c = net.connect(path);
    cleanups.push(() => void c.destroy());
    c.on('error', () => {});
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    // Flowing, so the agent's close is seen.
    c.on('data', () => {});
    c.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0)), frame(HEADERS, END_HEADERS | END_STREAM, 1, request('/x'))]));
    await closed;
    expect(seen).toEqual([
      { sync: false, reading: false },
      { sync: true, reading: undefined },
    ]);
  });

  it('destroys a session over its reset budget on a later macrotask, never from inside the event that saw the reset', async () => {
    const server = http2.createServer();
    let answered = 0;
    // What grpc-js does for an unknown method: answer at once, inside the 'stream' event.
    server.on('stream', (stream: ServerHttp2Stream) => {
      answered++;
      stream.respond({ ':status': 200, 'grpc-status': '12' }, { endStream: true });
    });
    // Where the real destroy (the prototype's, which the guard defers to) runs.
    const destroyedFrom: string[] = [];
    server.on('session', (session: ServerHttp2Session) => {
      const proto = Object.getPrototypeOf(session) as { destroy: ServerHttp2Session['destroy'] };
      const real = proto.destroy;
      proto.destroy = function (this: ServerHttp2Session, ...args: Parameters<ServerHttp2Session['destroy']>) {
        destroyedFrom.push(new Error().stack ?? '');
        return real.apply(this, args);
      } as ServerHttp2Session['destroy'];
      cleanups.push(() => void (proto.destroy = real));
    });
    const offences: number[] = [];
    const limits: H2Limits = { ...DEFAULT_H2_LIMITS, resetBurst: 5, resetsPerSecond: 1 };
    guardSessions(server, limits, systemClock, (_err, code) => offences.push(code), memoryLogger());
    const path = join(mkdtempSync(join(tmpdir(), 'h2-sessions-')), 's');
    await new Promise<void>((r) => server.listen(path, r));
    cleanups.push(() => void server.close());
    const c = net.connect(path);
    cleanups.push(() => void c.destroy());
    c.on('error', () => {});
    const rx: Buffer[] = [];
    c.on('data', (d: Buffer) => rx.push(d));
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    // 50 requests, each reset at once, in one write: all of it is parsed in one receive loop.
    const enc = request('/No/Such');
    const burst: Buffer[] = [PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0))];
    for (let id = 1; id < 100; id += 2) burst.push(frame(HEADERS, END_HEADERS, id, enc), frame(RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
    c.write(Buffer.concat(burst));
    await closed;
    expect(offences).toEqual([H2Code.ENHANCE_YOUR_CALM]);
    expect(destroyedFrom).toHaveLength(1);
    // From setImmediate (processImmediate), not from the tick queue Node runs inside nghttp2's receive loop.
    expect(destroyedFrom[0]).toContain('processImmediate');
    expect(destroyedFrom[0]).not.toContain('processTicksAndRejections');
    // The budget let the first ones through; after the offence no stream reached the handler.
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(50);
    const all = Buffer.concat(rx);
    const goaway = all.indexOf(Buffer.from([0, 0, 8, GOAWAY]));
    expect(goaway).toBeGreaterThanOrEqual(0);
    expect(all.readUInt32BE(goaway + 9 + 4)).toBe(H2Code.ENHANCE_YOUR_CALM);
  });
});

/** A session and streams as the guard sees them; FAKE, to put a stream in states a client cannot order. */
class FakeSession extends EventEmitter {
  destroyed = false;
  socket = { remoteAddress: 'conn-1' };
  destroyCalls: unknown[][] = [];
  destroy(...args: unknown[]): void {
    this.destroyCalls.push(args);
    this.destroyed = true;
  }
}
class FakeStream extends EventEmitter {
  destroyed = false;
  closed = false;
  rstCode: number | undefined = undefined;
  responded: [Record<string, string>, unknown][] = [];
  destroyCount = 0;
  constructor(readonly session: FakeSession) {
    super();
  }
  respond(headers: Record<string, string>, opts: unknown): void {
    if (this.destroyed || this.closed) throw Object.assign(new Error('The stream has been destroyed'), { code: 'ERR_HTTP2_INVALID_STREAM' });
    this.responded.push([headers, opts]);
  }
  destroy(): void {
    this.destroyCount++;
    this.destroyed = true;
  }
}

function fixture(opts: { share?: { admit(session: ServerHttp2Session): (() => void) | null }; dispatch?: (s: ServerHttp2Stream) => void } = {}) {
  const server = http2.createServer();
  const seen: FakeStream[] = [];
  server.on('stream', (s: ServerHttp2Stream) => {
    seen.push(s as unknown as FakeStream);
    opts.dispatch?.(s);
  });
  const log = memoryLogger();
  const offences: number[] = [];
  guardSessions(server, DEFAULT_H2_LIMITS, systemClock, (_e, code) => offences.push(code), log, opts.share);
  const session = new FakeSession();
  server.emit('session', session);
  const open = (raw: string[] = [':path', '/SpiffeWorkloadAPI/FetchX509SVID']) => {
    const s = new FakeStream(session);
    return { s, emit: () => server.emit('stream', s, {}, 0, raw) };
  };
  return { server, seen, log, offences, session, open };
}

describe('guardSessions: what reaches the gRPC handler', () => {
  it('passes an open stream to the handler once', () => {
    const f = fixture();
    const { s, emit } = f.open();
    emit();
    expect(f.seen).toEqual([s]);
  });

  it('does not pass on a stream destroyed or closed before its event came (grpc-js would respond on it and throw)', () => {
    const f = fixture({ dispatch: (s) => s.respond({ ':status': 200 }, { endStream: true }) });
    const a = f.open();
    a.s.destroyed = true;
    const b = f.open();
    b.s.closed = true;
    expect(() => {
      a.emit();
      b.emit();
    }).not.toThrow();
    expect(f.seen).toEqual([]);
    // Each still has an 'error' listener: destroying its session emits 'error' on it.
    expect(a.s.listenerCount('error')).toBe(1);
    expect(b.s.listenerCount('error')).toBe(1);
  });

  it('does not pass on streams of a session it is closing, and closes it on a later turn', async () => {
    const f = fixture();
    const big = f.open([':path', '/x', 'x-big', 'v'.repeat(DEFAULT_H2_LIMITS.maxHeaderListSize)]);
    big.emit();
    expect(f.offences).toEqual([H2Code.ENHANCE_YOUR_CALM]);
    expect(f.session.destroyed).toBe(false);
    const next = f.open();
    next.emit();
    expect(f.seen).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(f.session.destroyCalls).toHaveLength(1);
    expect(f.session.destroyCalls[0]![1]).toBe(H2Code.ENHANCE_YOUR_CALM);
  });

  it('answers RESOURCE_EXHAUSTED itself when the caller holds its share of open calls, and releases a share when a stream closes', () => {
    let held = 0;
    const share = {
      admit: () => {
        if (held >= 1) return null;
        held++;
        return () => void held--;
      },
    };
    const f = fixture({ share });
    const a = f.open();
    a.emit();
    const b = f.open();
    b.emit();
    expect(f.seen).toEqual([a.s]);
    expect(b.s.responded).toHaveLength(1);
    expect(b.s.responded[0]![0]).toMatchObject({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '8' });
    expect(decodeURIComponent(b.s.responded[0]![0]['grpc-message']!)).toContain('most open calls one user may hold');
    a.s.emit('close');
    expect(held).toBe(0);
    const c = f.open();
    c.emit();
    expect(f.seen).toEqual([a.s, c.s]);
  });

  it('a handler that throws loses its stream, not the agent', async () => {
    const f = fixture({
      dispatch: () => {
        throw new Error('boom');
      },
    });
    const a = f.open();
    expect(() => a.emit()).not.toThrow();
    expect(f.log.lines.some((l) => l.msg === 'The gRPC stream handler failed; the stream is reset')).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(a.s.destroyCount).toBe(1);
  });

  it('counts resets of streams it passed on against the budget (pinned: burst 100)', async () => {
    const f = fixture();
    for (let i = 0; i < 100; i++) {
      const s = f.open();
      s.emit();
      s.s.rstCode = 8;
      s.s.emit('close');
    }
    expect(f.offences).toEqual([]);
    const last = f.open();
    last.emit();
    last.s.rstCode = 8;
    last.s.emit('close');
    expect(f.offences).toEqual([H2Code.ENHANCE_YOUR_CALM]);
    expect(f.session.destroyed).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(f.session.destroyed).toBe(true);
  });

  it('takes grpc-js-like stream listeners off the server and warns when there are none', () => {
    const server = http2.createServer();
    const log = memoryLogger();
    guardSessions(server, DEFAULT_H2_LIMITS, systemClock, () => {}, log);
    expect(log.lines.some((l) => l.msg?.includes("stream handler was not found"))).toBe(true);
    expect(server.listenerCount('stream')).toBe(1);
  });
});

describe('DEFAULT_H2_LIMITS (pinned)', () => {
  it('keeps the numbers the README and the header of h2-limits.ts give', () => {
    expect(DEFAULT_H2_LIMITS).toEqual({
      maxFrameSize: 16_384,
      maxHeaderBlock: 16_384,
      maxHeaderListSize: 16_384,
      maxHeaderFields: 128,
      resetBurst: 100,
      resetsPerSecond: 10,
    });
  });
});
