/**
 * The gate in front of gRPC (h2-authority-filter.ts): a connection whose first request has a
 * valid :authority goes to gRPC on its own socket (no socketpair, nghttp2 reads it natively),
 * one with a socket-path :authority (grpc-java) goes through the filter, and so does one that
 * sends no request in time. The scanner's limits are the filter's; the limits of sessions read
 * directly are checked on a real listener, grpc-js server and Unix socket (no root needed:
 * the peer tracker is a fake, libc is the real one).
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/clock.js';
import { systemClock } from '../../../src/clock.js';
import { GATE_MS, authorityFilter } from '../../../src/endpoints/h2-authority-filter.js';
import { AuthorityRewriter } from '../../../src/endpoints/h2-rewriter.js';
import { FirstRequestScanner, GATE_SETTINGS } from '../../../src/endpoints/h2-gate.js';
import { DEFAULT_H2_LIMITS, H2Code, H2ProtocolError } from '../../../src/endpoints/h2-limits.js';
import { loadProto } from '../../../src/endpoints/proto.js';
import { buildGrpcServer } from '../../../src/endpoints/server.js';
import { UdsListener } from '../../../src/endpoints/uds-listener.js';
import { loadLibc } from '../../../src/proc/libc.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { PREFACE, clientEncoder, connectionError, frame, grpcRequest } from '../../helpers/h2-frames.js';
import { FakeCaller, listenerFixture, memoryLogger } from '../../helpers/request-path.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const GOAWAY = 7;
const CONTINUATION = 9;
const END_STREAM = 1;
const END_HEADERS = 4;
const SETTINGS_FRAME = frame(SETTINGS, 0, 0, Buffer.alloc(0));
const SETTINGS_ACK = frame(SETTINGS, 1, 0, Buffer.alloc(0));

const request = (authority: string, extra: { name: string; value: string }[] = []) => grpcRequest(authority, extra);


describe('FirstRequestScanner', () => {
  it('waits for the request and the ACK of its SETTINGS, then gives back every byte but that ACK', () => {
    const enc = clientEncoder();
    const s = new FirstRequestScanner();
    const head = Buffer.concat([PREFACE, SETTINGS_FRAME, frame(HEADERS, END_HEADERS, 1, enc(request('localhost')))]);
    expect(s.push(head).path).toBe('wait');
    const data = frame(0, END_STREAM, 1, Buffer.from('grpc-message'));
    expect(s.push(data).path).toBe('wait');
    const d = s.push(Buffer.concat([SETTINGS_ACK, frame(8, 0, 0, Buffer.from([0, 0, 1, 0]))]));
    expect(d.path).toBe('direct');
    expect(d.path === 'direct' && d.bytes.equals(Buffer.concat([head, data, frame(8, 0, 0, Buffer.from([0, 0, 1, 0]))]))).toBe(true);
  });

  it('decides at the header block when the ACK came first (clients that wait for the server SETTINGS)', () => {
    const enc = clientEncoder();
    const s = new FirstRequestScanner();
    const input = Buffer.concat([PREFACE, SETTINGS_FRAME, SETTINGS_ACK, frame(HEADERS, 0, 1, enc(request('localhost')))]);
    // Byte at a time, and the block split into HEADERS + CONTINUATION.
    const block = frame(CONTINUATION, END_HEADERS, 1, Buffer.alloc(0));
    const all = Buffer.concat([input, block]);
    const decisions = [...all].map((b) => s.push(Buffer.from([b])).path);
    expect(decisions.slice(0, -1).every((p) => p === 'wait')).toBe(true);
    expect(decisions.at(-1)).toBe('direct');
  });

  it('sends a socket-path :authority to the filter at once, telling it whether the ACK is still to come', () => {
    const enc = clientEncoder();
    const s = new FirstRequestScanner();
    const d = s.push(Buffer.concat([PREFACE, SETTINGS_FRAME, frame(HEADERS, END_HEADERS, 1, enc(request('/tmp/spire-agent/public/api.sock')))]));
    expect(d).toMatchObject({ path: 'filter', ackPending: true });
    const t = new FirstRequestScanner();
    const input = Buffer.concat([PREFACE, SETTINGS_FRAME, SETTINGS_ACK, frame(HEADERS, END_HEADERS, 1, clientEncoder()(request('/run/x.sock')))]);
    const e = t.push(input);
    expect(e).toMatchObject({ path: 'filter', ackPending: false });
    expect(e.path === 'filter' && e.bytes.length).toBe(input.length - SETTINGS_ACK.length);
  });

  it('leaves a connection that sends too much before its first request to the filter', () => {
    const s = new FirstRequestScanner();
    s.push(Buffer.concat([PREFACE, SETTINGS_FRAME]));
    let d = s.push(frame(6, 0, 0, Buffer.alloc(8)));
    for (let i = 0; i < 10_000 && d.path === 'wait'; i++) d = s.push(frame(6, 0, 0, Buffer.alloc(8)));
    expect(d).toMatchObject({ path: 'filter', ackPending: true });
  });

  it('passes a connection that is not HTTP/2 with prior knowledge straight on', () => {
    expect(new FirstRequestScanner().push(Buffer.from('GET / HTTP/1.1\r\n')).path).toBe('direct');
  });

  it("applies the filter's limits: frame size from the header, header block as sent, header list as decoded", () => {
    expect(connectionError(() => new FirstRequestScanner().push(Buffer.concat([PREFACE, Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0])]))).h2Code).toBe(H2Code.FRAME_SIZE_ERROR);
    const flood = new FirstRequestScanner();
    flood.push(Buffer.concat([PREFACE, frame(HEADERS, 0, 1, Buffer.alloc(0))]));
    expect(
      connectionError(() => {
        for (let i = 0; i < 10_000; i++) flood.push(frame(CONTINUATION, 0, 1, Buffer.alloc(0)));
      }).h2Code,
    ).toBe(H2Code.ENHANCE_YOUR_CALM);
    const big = new FirstRequestScanner();
    big.push(Buffer.concat([PREFACE, frame(HEADERS, 0, 1, Buffer.alloc(16_000, 0x40))]));
    expect(connectionError(() => big.push(frame(CONTINUATION, 0, 1, Buffer.alloc(16_000, 0x40)))).h2Code).toBe(H2Code.ENHANCE_YOUR_CALM);
    const meta = Array.from({ length: 60 }, (_, i) => ({ name: `x-${i}`, value: 'v'.repeat(400) }));
    expect(() => new FirstRequestScanner({ ...DEFAULT_H2_LIMITS, maxHeaderBlock: 1 << 20 }).push(Buffer.concat([PREFACE, frame(HEADERS, END_HEADERS, 1, clientEncoder()(request('localhost', meta)))]))).toThrow(H2ProtocolError);
    expect(connectionError(() => new FirstRequestScanner().push(Buffer.concat([PREFACE, frame(HEADERS, 0, 1, Buffer.alloc(0)), SETTINGS_FRAME]))).message).toMatch(/CONTINUATION/);
  });
});

describe('AuthorityRewriter after the gate', () => {
  it("drops the ACK of the gate's SETTINGS and passes the server's own ACK on", () => {
    const r = new AuthorityRewriter(DEFAULT_H2_LIMITS, () => 0, 1);
    const out = Buffer.concat([PREFACE, SETTINGS_FRAME, SETTINGS_ACK, SETTINGS_ACK].flatMap((b) => r.push(b)));
    expect(out.equals(Buffer.concat([PREFACE, SETTINGS_FRAME, SETTINGS_ACK]))).toBe(true);
  });
});

type Client = grpc.Client & { FetchJWTSVID: (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(clock: Clock = systemClock, opts: { hideServer?: boolean } = {}) {
  const { log, attestation, handler, at } = listenerFixture();
  const libc = loadLibc();
  let pairs = 0;
  const counting = { ...libc, socketpair: () => (pairs++, libc.socketpair()) };
  const server = buildGrpcServer({ workload: handler }, () => 'SERVING');
  const path = join(mkdtempSync(join(tmpdir(), 'h2-gate-')), 'public', 'api.sock');
  const front = authorityFilter({ libc: counting, log, clock });
  // As if grpc-js no longer had the map the listener finds its HTTP/2 server in.
  if (opts.hideServer) front.attach = ((attach) => () => attach(undefined))(front.attach!.bind(front));
  const listener = new UdsListener(path, server, { track: async () => new FakeCaller(4242) }, log, 0o777, front);
  at.listener = listener;
  await listener.listen();
  attestation.byPid.set(4242, [{ type: 'unix', value: 'uid:1000' }]);
  cleanups.push(() => listener.close(100));
  const fetchJWT = (options: grpc.ChannelOptions = {}) => {
    const wl = loadProto('spiffe/workload/workload.proto') as unknown as { SpiffeWorkloadAPI: new (addr: string, creds: grpc.ChannelCredentials, o: grpc.ChannelOptions) => Client };
    const client = new wl.SpiffeWorkloadAPI(`unix://${path}`, grpc.credentials.createInsecure(), options);
    cleanups.push(() => client.close());
    const md = new grpc.Metadata();
    md.set('workload.spiffe.io', 'true');
    return new Promise<{ err: grpc.ServiceError | null; res: unknown }>((resolve) => client.FetchJWTSVID({ audience: ['db'] }, md, (err, res) => resolve({ err, res })));
  };
  return { listener, path, log, fetchJWT, pairs: () => pairs };
}

/** A raw HTTP/2 client on the socket: collects the frames the server sends. */
function rawClient(path: string) {
  const s = net.connect(path);
  const frames: { type: number; flags: number; stream: number; payload: Buffer }[] = [];
  let rx = Buffer.alloc(0);
  let closed = false;
  s.on('data', (c: Buffer) => {
    rx = Buffer.concat([rx, c]);
    while (rx.length >= 9 && rx.length >= 9 + rx.readUIntBE(0, 3)) {
      const len = rx.readUIntBE(0, 3);
      frames.push({ type: rx[3]!, flags: rx[4]!, stream: rx.readUInt32BE(5), payload: rx.subarray(9, 9 + len) });
      rx = rx.subarray(9 + len);
    }
  });
  s.on('error', () => {});
  s.on('close', () => (closed = true));
  cleanups.push(() => void s.destroy());
  return { s, frames, closed: () => closed, settings: () => frames.filter((f) => f.type === SETTINGS && !(f.flags & 1)).length };
}

const grpcMessage = (payload: Buffer) => {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
};
/** JWTSVIDRequest { audience: ["db"] } */
const JWT_REQUEST = grpcMessage(Buffer.from([0x0a, 0x02, 0x64, 0x62]));

describe('the gate on a real listener', () => {
  it('hands a client with a valid :authority to gRPC on its own socket (no socketpair)', async () => {
    const t = await start();
    const r = await t.fetchJWT();
    expect(r.err).toBeNull();
    expect(r.res).toMatchObject({ svids: [{ spiffe_id: 'spiffe://example.org/web' }] });
    expect(t.pairs()).toBe(0);
  });

  it("filters every connection when grpc-js's HTTP/2 server cannot be found (its limits could not be set)", async () => {
    const t = await start(systemClock, { hideServer: true });
    expect((await t.fetchJWT()).err).toBeNull();
    expect(t.pairs()).toBe(1);
    expect(t.log.lines.some((l) => l.msg?.includes('every connection goes through the :authority filter'))).toBe(true);
  });

  it('serves a grpc-java-like client (waits for SETTINGS, socket-path :authority) through the filter', async () => {
    const t = await start();
    const c = rawClient(t.path);
    c.s.write(Buffer.concat([PREFACE, SETTINGS_FRAME]));
    await expect.poll(() => c.settings()).toBe(1);
    c.s.write(Buffer.concat([SETTINGS_ACK, frame(HEADERS, END_HEADERS, 1, clientEncoder()(request(t.path))), frame(0, END_STREAM, 1, JWT_REQUEST)]));
    // The gRPC session's own SETTINGS, its ACKs, and the response on stream 1 with grpc-status 0.
    await expect.poll(() => c.frames.some((f) => f.stream === 1 && f.type === HEADERS && f.flags & END_STREAM)).toBe(true);
    expect(c.settings()).toBe(2);
    expect(c.frames.some((f) => f.type === 0 && f.stream === 1 && f.payload.length > 5)).toBe(true);
    expect(c.frames.some((f) => f.type === GOAWAY)).toBe(false);
    expect(t.pairs()).toBe(1);
  });

  it('leaves a client that sends no request in time to the filter, which then serves it', async () => {
    const clock = new FakeClock();
    const t = await start(clock);
    const c = rawClient(t.path);
    c.s.write(Buffer.concat([PREFACE, SETTINGS_FRAME]));
    await expect.poll(() => c.settings()).toBe(1);
    c.s.write(SETTINGS_ACK);
    await new Promise((r) => setTimeout(r, 50));
    expect(t.pairs()).toBe(0);
    clock.advance(GATE_MS);
    await expect.poll(() => t.pairs()).toBe(1);
    c.s.write(Buffer.concat([frame(HEADERS, END_HEADERS, 1, clientEncoder()(request('localhost'))), frame(0, END_STREAM, 1, JWT_REQUEST)]));
    await expect.poll(() => c.frames.some((f) => f.stream === 1 && f.type === HEADERS && f.flags & END_STREAM)).toBe(true);
    expect(c.frames.some((f) => f.type === GOAWAY)).toBe(false);
  });

  it('sends GOAWAY for a first request over the limits, before gRPC sees it', async () => {
    const t = await start();
    const c = rawClient(t.path);
    c.s.write(Buffer.concat([PREFACE, SETTINGS_FRAME, frame(HEADERS, 0, 1, Buffer.alloc(16_000, 0x40)), frame(CONTINUATION, 0, 1, Buffer.alloc(16_000, 0x40))]));
    await expect.poll(() => c.closed()).toBe(true);
    const g = c.frames.find((f) => f.type === GOAWAY);
    expect(g?.payload.readUInt32BE(4)).toBe(H2Code.ENHANCE_YOUR_CALM);
    expect(t.log.lines.some((l) => l.msg?.startsWith('Closing an HTTP/2 connection that broke a protocol limit'))).toBe(true);
  });

  it('limits a directly read session: rapid reset gets GOAWAY ENHANCE_YOUR_CALM and the connection is closed', async () => {
    const t = await start();
    const c = rawClient(t.path);
    const enc = clientEncoder();
    c.s.write(Buffer.concat([PREFACE, SETTINGS_FRAME]));
    await expect.poll(() => c.settings()).toBe(1);
    c.s.write(Buffer.concat([SETTINGS_ACK, frame(HEADERS, END_HEADERS, 1, enc(request('localhost')))]));
    await expect.poll(() => c.settings()).toBe(2);
    c.s.write(SETTINGS_ACK);
    const rst = Buffer.from([0, 0, 0, 8]);
    for (let id = 1; id < 2 * (DEFAULT_H2_LIMITS.resetBurst + 20) && !c.closed(); id += 2) {
      c.s.write(Buffer.concat([id === 1 ? Buffer.alloc(0) : frame(HEADERS, END_HEADERS, id, enc(request('localhost'))), frame(RST_STREAM, 0, id, rst)]));
      await new Promise((r) => setImmediate(r));
    }
    await expect.poll(() => c.closed(), { timeout: 5_000 }).toBe(true);
    const g = c.frames.filter((f) => f.type === GOAWAY).at(-1);
    expect(g?.payload.readUInt32BE(4)).toBe(H2Code.ENHANCE_YOUR_CALM);
    expect(t.pairs()).toBe(0);
  });

  it('limits a directly read session: a header list over 16 KiB on a later request gets GOAWAY, ACKed or not', async () => {
    for (const ack of [true, false]) {
      const t = await start();
      const c = rawClient(t.path);
      const enc = clientEncoder();
      c.s.write(Buffer.concat([PREFACE, SETTINGS_FRAME]));
      await expect.poll(() => c.settings()).toBe(1);
      c.s.write(Buffer.concat([SETTINGS_ACK, frame(HEADERS, END_HEADERS, 1, enc(request('localhost'))), frame(0, END_STREAM, 1, JWT_REQUEST)]));
      await expect.poll(() => c.frames.some((f) => f.stream === 1 && f.type === HEADERS && f.flags & END_STREAM)).toBe(true);
      // The server advertised the limit in its own SETTINGS (MAX_HEADER_LIST_SIZE = 16,384).
      const own = c.frames.filter((f) => f.type === SETTINGS && !(f.flags & 1))[1]!;
      const params = new Map(Array.from({ length: own.payload.length / 6 }, (_, i) => [own.payload.readUInt16BE(6 * i), own.payload.readUInt32BE(6 * i + 2)]));
      expect(params.get(6)).toBe(DEFAULT_H2_LIMITS.maxHeaderListSize);
      if (ack) c.s.write(SETTINGS_ACK);
      const meta = Array.from({ length: 3 }, (_, i) => ({ name: `x-big-${i}`, value: 'v'.repeat(6_000) }));
      const block = enc(request('localhost', meta));
      c.s.write(Buffer.concat([frame(HEADERS, 0, 3, block.subarray(0, 16_000)), frame(CONTINUATION, END_HEADERS, 3, block.subarray(16_000)), frame(0, END_STREAM, 3, JWT_REQUEST)]));
      if (ack) {
        // Node itself refuses the stream once the limit is acknowledged.
        await expect.poll(() => c.frames.some((f) => f.stream === 3 && f.type === RST_STREAM) || c.closed()).toBe(true);
      } else {
        await expect.poll(() => c.closed()).toBe(true);
        expect(c.frames.filter((f) => f.type === GOAWAY).at(-1)?.payload.readUInt32BE(4)).toBe(H2Code.ENHANCE_YOUR_CALM);
      }
      expect(c.frames.some((f) => f.stream === 3 && f.type === 0)).toBe(false);
      expect(t.pairs()).toBe(0);
    }
  });
});

describe('the gate after the hand-off', () => {
  it('keeps nothing of a connection it handed to gRPC directly (scanner, bytes read, the listener callback)', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(join(mkdtempSync(join(tmpdir(), 'h2-gate-')), 's'), r));
    cleanups.push(() => void srv.close());
    const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
    const c = net.connect(srv.address() as string);
    c.on('error', () => {});
    cleanups.push(() => void c.destroy());
    const socket = await accepted;
    cleanups.push(() => void socket.destroy());
    const front = authorityFilter({ libc: loadLibc(), log: memoryLogger(), clock: systemClock });
    const h2 = http2.createServer();
    front.attach!(h2);
    let served: net.Socket | undefined;
    // The listener's callback is held here only weakly: the gate must let go of it once it has used it.
    let serve: ((open: () => net.Socket) => void) | undefined = (open) => (served = open());
    const weak = new WeakRef(serve);
    front.wrap(socket, serve);
    serve = undefined;
    socket.resume();
    c.write(Buffer.concat([PREFACE, SETTINGS_FRAME, SETTINGS_ACK, frame(HEADERS, END_HEADERS, 1, clientEncoder()(request('localhost')))]));
    await expect.poll(() => served).toBe(socket);
    await new Promise((r) => setImmediate(r));
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    expect(socket.destroyed).toBe(false);
    expect(weak.deref()).toBeUndefined();
  });
});
