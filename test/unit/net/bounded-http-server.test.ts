/**
 * The responder behind the metrics and health listeners, on a real loopback port: what one
 * connection can make it do (test/integration/attack-http-listeners.test.ts attacks the daemon's).
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createBoundedHttpServer, MAX_HEAD_BYTES, type BoundedHttpServer, type HttpRequestHead } from '../../../src/net/bounded-http-server.js';

let server: BoundedHttpServer | undefined;
afterEach(async () => {
  const s = server;
  server = undefined;
  s?.closeAllConnections();
  await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
});

async function start(maxConnections?: number): Promise<{ port: number; seen: HttpRequestHead[]; errors: Error[] }> {
  const seen: HttpRequestHead[] = [];
  const errors: Error[] = [];
  server = createBoundedHttpServer(
    (req) => {
      seen.push(req);
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: `hello ${req.target}` };
    },
    (err) => errors.push(err),
    maxConnections,
  );
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as { port: number }).port, seen, errors };
}

/** Sends `bytes` (optionally half-closing), and resolves with everything received until the server closes. */
function exchange(port: number, bytes: string | Buffer, end = false): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => (end ? s.end(bytes) : s.write(bytes)));
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
  });
}

function opened(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => {});
  });
}

describe('bounded HTTP responder', () => {
  it('answers one GET and closes, whatever follows the request head', async () => {
    const { port, seen } = await start();
    const got = await exchange(port, 'GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(got).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(got).toContain('connection: close\r\n');
    expect(got).toContain('content-length: 18\r\n');
    expect(got.endsWith('\r\n\r\nhello /metrics?x=1')).toBe(true);
    // The pipelined request was never parsed.
    expect(seen).toEqual([{ method: 'GET', target: '/metrics?x=1' }]);
  });

  it('answers a request whose client has already closed its side', async () => {
    const { port } = await start();
    expect(await exchange(port, 'GET /live HTTP/1.0\r\n\r\n', true)).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*hello \/live$/);
  });

  it('answers HEAD without the body but with its length', async () => {
    const { port } = await start();
    const got = await exchange(port, 'HEAD /x HTTP/1.1\r\n\r\n');
    expect(got).toContain('content-length: 8\r\n');
    expect(got.endsWith('\r\n\r\n')).toBe(true);
  });

  it('refuses a head past 16 KiB with 431 and garbage with 400, before the handler sees them', async () => {
    const { port, seen } = await start();
    expect(await exchange(port, `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await exchange(port, Buffer.from('\x16\x03\x01 not http\r\n\r\n', 'latin1'))).toMatch(/^HTTP\/1\.1 400 /);
    expect(seen).toEqual([]);
  });

  it('closes a connection that ends before its request is complete, without an answer', async () => {
    const { port, seen } = await start();
    expect(await exchange(port, 'GET /metrics HTTP/1.1\r\nHost: 1', true)).toBe('');
    expect(seen).toEqual([]);
  });

  it('at its bound, closes the oldest silent connection for a newcomer, which is answered', async () => {
    const { port } = await start(4);
    const silent = await Promise.all(Array.from({ length: 4 }, () => opened(port)));
    // Connected is not yet accepted; and a connection is judged silent two event-loop turns after
    // its accept (bounded-http-server-eviction.test.ts), before which a newcomer would be refused.
    while ((await new Promise<number>((r) => server!.getConnections((_, n) => r(n)))) < 4) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
    const closed = new Promise<void>((r) => silent[0]!.once('close', () => r()));
    expect(await exchange(port, 'GET /real HTTP/1.1\r\n\r\n')).toContain('hello /real');
    await closed;
    expect(silent.slice(1).every((s) => !s.destroyed)).toBe(true);
    silent.forEach((s) => s.destroy());
  });

  it("serves an absolute-form target by its path and query, as Go's net/http does, and refuses a target of no form with 400", async () => {
    const { port, seen } = await start();
    expect(await exchange(port, 'GET http://127.0.0.1:9988/metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9988\r\n\r\n')).toMatch(/hello \/metrics\?x=1$/);
    expect(await exchange(port, 'GET HTTP://h HTTP/1.1\r\n\r\n')).toMatch(/hello \/$/);
    expect(await exchange(port, 'GET metrics HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(seen).toEqual([
      { method: 'GET', target: '/metrics?x=1' },
      { method: 'GET', target: '/' },
    ]);
  });

  it('reports an accept error once instead of crashing', async () => {
    const { errors } = await start();
    server!.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }));
    server!.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }));
    expect(errors.map((e) => e.message)).toEqual(['accept EMFILE']);
  });
});
