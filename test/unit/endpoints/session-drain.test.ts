/**
 * SessionDrain on real node:http2 sessions over loopback: a request the client has sent is
 * answered before the session's GOAWAY, even one the server has not read when the drain begins
 * (a plain session.close() at that moment refuses it: its GOAWAY names only streams already read).
 */
import { connect, createServer, type ClientHttp2Session, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionDrain } from '../../../src/endpoints/session-drain.js';

interface Outcome {
  status?: number;
  body: string;
  error?: string;
  goaway: boolean;
}

/** One request on a fresh connection, sent as soon as the session exists; what came back. */
function ask(client: ClientHttp2Session): Promise<Outcome> {
  const out: Outcome = { body: '', goaway: false };
  client.on('goaway', () => (out.goaway = true));
  client.on('error', () => undefined);
  return new Promise((resolve) => {
    const req = client.request({ ':path': '/', ':method': 'POST' });
    req.on('response', (h) => (out.status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (out.body += c.toString()));
    req.on('error', (e: NodeJS.ErrnoException) => (out.error = e.code ?? e.message));
    req.on('close', () => resolve(out));
    req.end('hello');
  });
}

describe('SessionDrain', () => {
  let server: Http2Server | undefined;
  let client: ClientHttp2Session | undefined;
  afterEach(async () => {
    client?.destroy();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
  });

  async function serve(answerAfterMs: number): Promise<{ drain: SessionDrain; port: number }> {
    server = createServer();
    const drain = new SessionDrain(server);
    server.on('stream', (stream: ServerHttp2Stream) => {
      stream.on('error', () => undefined);
      stream.resume();
      setTimeout(() => {
        if (stream.closed) return;
        stream.respond({ ':status': 200 });
        stream.end('answer');
      }, answerAfterMs);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { drain, port: (server.address() as AddressInfo).port };
  }

  it('answers a request in progress, then GOAWAY closes the connection', async () => {
    const { drain, port } = await serve(100);
    client = connect(`http://127.0.0.1:${port}`);
    const outcome = ask(client);
    await new Promise<void>((r) => server!.once('stream', () => r()));
    await drain.start(1000);
    const o = await outcome;
    expect(o).toMatchObject({ status: 200, body: 'answer', goaway: true });
    expect(o.error).toBeUndefined();
    await new Promise<void>((r) => (client!.closed ? r() : client!.once('close', () => r())));
  });

  it('answers a request sent on a session that opened while draining, before the server read it', async () => {
    const { drain, port } = await serve(0);
    await drain.start(1000);
    client = connect(`http://127.0.0.1:${port}`);
    const o = await ask(client);
    expect(o).toMatchObject({ status: 200, body: 'answer', goaway: true });
    expect(o.error).toBeUndefined();
  });

  it('stops waiting for a GOAWAY round trip after the cap', async () => {
    const { drain, port } = await serve(0);
    // A client that opens HTTP/2 (preface, empty SETTINGS) and then never answers a PING.
    const raw = netConnect(port, '127.0.0.1');
    raw.on('error', () => undefined);
    const opened = new Promise<void>((r) => server!.once('session', () => r()));
    raw.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    await opened;
    try {
      const t0 = Date.now();
      await drain.start(200);
      const waited = Date.now() - t0;
      expect(waited).toBeGreaterThanOrEqual(150);
      expect(waited).toBeLessThan(1500);
      expect(drain.size).toBe(1);
    } finally {
      raw.destroy();
    }
  });
});
