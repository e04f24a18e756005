/**
 * The metrics and health listeners' request reader (src/net/bounded-http-server.ts) parses bytes
 * from anyone who can reach the port. For any bytes, cut into any chunks, half-closed or not: the
 * listener never throws, every connection ends (answered once with a well-formed status line, or
 * closed unanswered when the client left before its request was complete), the handler sees only
 * request lines that match HTTP/1.x's shape, with the target in origin form (an absolute-form target
 * `http://host/path`, which Go's net/http serves, arrives as its path), and no connection is left
 * open afterwards.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoundedHttpServer, originForm, type BoundedHttpServer, type HttpRequestHead } from '../../../src/net/bounded-http-server.js';
import { fc, fuzz } from './fuzz.js';

let server: BoundedHttpServer;
let port: number;
const seen: HttpRequestHead[] = [];
const errors: Error[] = [];

beforeAll(async () => {
  server = createBoundedHttpServer(
    (req) => {
      seen.push(req);
      if (req.target === '/throw') throw new Error('handler failed');
      return { status: req.target === '/ok' ? 200 : 404, body: 'x' };
    },
    (err) => errors.push(err),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

/** Writes the chunks one by one (optionally half-closing), and returns all that came back once the server closed. */
function exchange(chunks: Buffer[], end: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no end within 5 s after ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
    }, 5_000);
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        s.write(c);
        await new Promise((r) => setImmediate(r));
      }
      // Without a half-close, a request that never completes would wait for the 10 s head timeout.
      if (end || !Buffer.concat(chunks).includes('\r\n\r\n')) s.end();
    });
  });
}

const token = fc.constantFrom('GET', 'HEAD', 'POST', 'get', 'G\u0000T', '', ' ');
const target = fc.constantFrom('/ok', '/missing', '/throw', '*', 'http://h/ok', 'HTTP://h:9988/ok?x=1', 'http://h', 'http://h?x', 'https://[::1]:1/throw', 'http:/ok', 'http:ok', 'ok', '/ok?x=1', '', '/ok /ok', '/\u00ff');
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ', 'http/1.1', '');
const header = fc.oneof(fc.constantFrom('Host: x', 'Connection: keep-alive', 'Content-Length: 5', 'Transfer-Encoding: chunked', ''), fc.string({ maxLength: 40 }));
const eol = fc.constantFrom('\r\n', '\n', '\r', '');
const shaped = fc
  .tuple(token, target, version, fc.array(fc.tuple(header, eol), { maxLength: 5 }), eol, fc.string({ maxLength: 30 }))
  .map(([m, t, v, hs, e, rest]) => `${m} ${t} ${v}\r\n${hs.map(([h, x]) => h + x).join('')}${e}${rest}`);
const bytes = fc.oneof(
  shaped.map((s) => Buffer.from(s, 'latin1')),
  fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
  fc.tuple(shaped, fc.uint8Array({ maxLength: 40 })).map(([s, a]) => Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from(a)])),
);
/** The bytes cut at up to 5 places, so a request line or its end may arrive split across reads. */
const chunked = fc.tuple(bytes, fc.array(fc.nat(), { maxLength: 5 })).map(([b, cuts]) => {
  const at = [...new Set(cuts.map((c) => (b.length ? c % b.length : 0)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, b.length]) {
    out.push(b.subarray(from, c));
    from = c;
  }
  return out.filter((c) => c.length > 0);
});

const STATUS_LINE = /^HTTP\/1\.1 (200|400|404|405|431|500) [A-Za-z ]*\r\n/;

describe('fuzz: the HTTP listeners request reader', () => {
  it('answers once with a well-formed status or closes; never throws; the handler sees only HTTP/1.x request lines', async () => {
    await fuzz(
      fc.asyncProperty(chunked, fc.boolean(), async (chunks, end) => {
        const before = seen.length;
        const got = await exchange(chunks, end);
        const sent = Buffer.concat(chunks);
        const complete = sent.includes('\r\n\r\n');
        if (got !== '') {
          expect(got, JSON.stringify(sent.toString('latin1'))).toMatch(STATUS_LINE);
          expect(got.match(/HTTP\/1\.1 \d{3}/g), 'one answer per connection').toHaveLength(1);
          expect(got).toMatch(/\r\nconnection: close\r\n/);
        } else {
          expect(complete, `a complete request went unanswered: ${JSON.stringify(sent.toString('latin1'))}`).toBe(false);
        }
        for (const req of seen.slice(before)) {
          expect(req.method).toMatch(/^[A-Z]+$/);
          expect(req.target).toMatch(/^(\/\S*|\*)$/);
        }
      }),
      300,
      15_000,
    );
    expect(errors).toEqual([]);
  }, 120_000);

  it("maps a target as Go's net/http reads it: origin form and * as sent, absolute form to its path and query, anything else refused", () => {
    fc.assert(
      fc.property(fc.webUrl({ withQueryParameters: true }), (url) => {
        // The authority (webUrl's never holds / or ?) goes; what follows it is kept byte for byte.
        const afterScheme = url.slice(url.indexOf('://') + 3);
        const cut = afterScheme.search(/[/?]/);
        const rest = cut < 0 ? '' : afterScheme.slice(cut);
        expect(originForm(url)).toBe(rest.startsWith('/') ? rest : `/${rest}`);
      }),
    );
    expect(['/a?b', '*', 'http://h', 'http://h:1?q', 'h+s.x-y://a/b', 'http:/p', 'http:ok', 'ok', '?x', '//h/p', ''].map(originForm)).toEqual([
      '/a?b',
      '*',
      '/',
      '/?q',
      '/b',
      '/p',
      undefined,
      undefined,
      undefined,
      '//h/p',
      undefined,
    ]);
  });

  it('leaves no connection open once its clients are gone', async () => {
    await new Promise((r) => setTimeout(r, 100));
    const open = await new Promise<number>((r) => server.getConnections((_, n) => r(n)));
    expect(open).toBe(0);
  });
});
