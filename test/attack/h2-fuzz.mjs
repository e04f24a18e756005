/**
 * A frame-level HTTP/2 fuzzer against a live agent: several connections, each sending a random
 * sequence of valid and invalid frames (every type and unknown ones, random flags, stream ids,
 * lengths that match or lie, HPACK blocks that are valid, truncated or random, SETTINGS with
 * real and bogus parameters), in random chunks, reconnecting whenever the agent closes it.
 * Some connections first act as a real gRPC client, so the fuzz also reaches the direct path
 * every real client gets, and some send the socket path as :authority (the filtered path).
 * Plain Node and no project code. Deterministic for a seed (up to timing): connection i of a
 * run uses the PRNG seeded with seed + i. Prints one JSON line with the seed and counts.
 *
 *   h2-fuzz.mjs <socket> [--seed N] [--seconds S] [--conns N]
 */
import { H2Conn, T, FLAG, EMPTY_GRPC_MESSAGE, FETCH_X509, PREFACE, frame, grpcRequestBlock, hpackInt, literal } from './h2-client.mjs';

const [path, ...rest] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : dflt;
};
const SEED = Number(opt('seed', Date.now() % 2 ** 31));
const SECONDS = Number(opt('seconds', 20));
const CONNS = Number(opt('conns', 6));
const end = Date.now() + SECONDS * 1000;

/** mulberry32: small, fast, good enough to drive a fuzzer. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: (xs) => xs[int(xs.length)],
    chance: (p) => next() < p,
    bytes: (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
  };
}

const totals = { seed: SEED, connections: 0, connectErrors: {}, frames: 0, bytes: 0, goaways: {}, closedByAgent: 0, served: 0 };
const count = (o, k) => (o[k] = (o[k] ?? 0) + 1);

const NAMES = [':method', ':scheme', ':path', ':authority', ':status', 'content-type', 'te', 'workload.spiffe.io', 'grpc-timeout', 'grpc-encoding', 'x-a', 'connection', 'Upper', ''];
const VALUES = ['POST', 'GET', 'http', FETCH_X509, '/SpiffeWorkloadAPI/FetchJWTSVID', '/SpiffeWorkloadAPI/ValidateJWTSVID', '/SpiffeWorkloadAPI/FetchX509Bundles', '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets', '/grpc.health.v1.Health/Check', '/nope', '', 'localhost', '/tmp/x.sock', 'application/grpc', 'trailers', 'true', '1S', '99999999H', 'gzip', 'x\u0000y'];

function headerBlock(r) {
  const parts = [];
  if (r.chance(0.6)) parts.push(grpcRequestBlock({ path: r.pick(VALUES), authority: r.pick(['localhost', path, 'a b']) }));
  const n = r.int(8);
  for (let i = 0; i < n; i++) {
    const kind = r.int(6);
    if (kind === 0) parts.push(literal(r.pick(NAMES), r.pick(VALUES)));
    else if (kind === 1) parts.push(Buffer.from([0x80 | (1 + r.int(70))])); // indexed, static or dynamic (maybe absent)
    else if (kind === 2) parts.push(Buffer.concat([Buffer.from([0x40]), hpackInt(3, 7), Buffer.from('x-d'), hpackInt(r.int(200), 7), r.bytes(r.int(200))])); // incremental indexing
    else if (kind === 3) parts.push(hpackInt(r.int(8192), 5, 0x20)); // dynamic table size update
    else if (kind === 4) parts.push(r.bytes(r.int(40))); // garbage
    else parts.push(Buffer.concat([Buffer.from([0x10]), hpackInt(r.int(300), 7), r.bytes(8)])); // never-indexed with a length that lies
  }
  return Buffer.concat(parts);
}

function randomFrame(r, state) {
  const streamId = r.pick([0, 1, state.next, state.next, state.next + 2, r.int(2 ** 31), 2 ** 31 + r.int(100), 2, state.last]);
  const type = r.chance(0.05) ? 10 + r.int(246) : r.int(10);
  let flags = r.chance(0.3) ? r.int(256) : r.pick([0, 1, 4, 5, 8, 0x20]);
  let payload;
  switch (type) {
    case T.HEADERS:
    case T.CONTINUATION:
    case T.PUSH_PROMISE:
      payload = headerBlock(r);
      if (type === T.PUSH_PROMISE) payload = Buffer.concat([Buffer.alloc(4), payload]);
      if (r.chance(0.2)) payload = payload.subarray(0, r.int(payload.length + 1));
      if (type === T.HEADERS && streamId === state.next) state.next += 2;
      break;
    case T.DATA:
      payload = r.chance(0.5) ? EMPTY_GRPC_MESSAGE : r.bytes(r.int(r.chance(0.1) ? 20_000 : 300));
      break;
    case T.SETTINGS: {
      const n = r.int(6);
      const ps = [];
      for (let i = 0; i < n; i++) {
        const p = Buffer.alloc(6);
        p.writeUInt16BE(r.pick([1, 2, 3, 4, 5, 6, 8, 9, r.int(65536)]), 0);
        p.writeUInt32BE(r.pick([0, 1, 100, 16_384, 65_535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, r.int(2 ** 32)]) >>> 0, 2);
        ps.push(p);
      }
      payload = Buffer.concat(ps);
      if (r.chance(0.1)) payload = payload.subarray(0, Math.max(0, payload.length - 1));
      break;
    }
    case T.WINDOW_UPDATE: {
      payload = Buffer.alloc(4);
      payload.writeUInt32BE(r.pick([0, 1, 65_535, 2 ** 31 - 1, 2 ** 32 - 1, r.int(2 ** 32)]) >>> 0);
      break;
    }
    case T.RST_STREAM:
    case T.PRIORITY:
    case T.PING:
    case T.GOAWAY:
      payload = r.bytes(r.pick([4, 5, 8, 8, 8, r.int(20)]));
      break;
    default:
      payload = r.bytes(r.int(100));
  }
  let f = frame(type, flags, streamId, payload);
  // Now and then a length field that lies (shorter, longer, or past the advertised maximum).
  if (r.chance(0.03)) f.writeUIntBE(r.pick([0, payload.length + 1, 16_385, 2 ** 24 - 1, r.int(2 ** 24)]), 0, 3);
  state.last = streamId;
  return f;
}

async function connection(i) {
  const r = prng(SEED + i);
  let round = 0;
  while (Date.now() < end) {
    const c = await new H2Conn(path).connect();
    totals.connections++;
    if (c.error) {
      count(totals.connectErrors, c.error);
      await new Promise((res) => setTimeout(res, 20));
      continue;
    }
    const state = { next: 1, last: 0 };
    if (r.chance(0.7)) {
      await c.handshake(r.chance(0.2) ? Buffer.from([0, 4, 0, 0, 0, 0]) : Buffer.alloc(0), 5000);
      if (r.chance(0.8)) {
        if (await c.fetchX509(1, { authority: r.chance(0.3) ? path : 'localhost', timeoutMs: 5000 })) totals.served++;
        state.next = 3;
      }
    } else if (r.chance(0.8)) {
      await c.write(PREFACE);
    }
    const n = 1 + r.int(400);
    for (let k = 0; k < n && !c.closed && Date.now() < end; k++) {
      const batch = [];
      const m = 1 + r.int(20);
      for (let j = 0; j < m; j++) batch.push(randomFrame(r, state));
      const buf = Buffer.concat(batch);
      totals.frames += m;
      // Random chunking: whole, or split at random points.
      if (r.chance(0.7)) {
        if (!(await c.write(buf, 2000))) break;
      } else {
        let off = 0;
        while (off < buf.length && !c.closed) {
          const len = 1 + r.int(Math.min(200, buf.length - off));
          if (!(await c.write(buf.subarray(off, off + len), 2000))) break;
          off += len;
        }
      }
      if (r.chance(0.05)) await new Promise((res) => setTimeout(res, r.int(50)));
    }
    if (r.chance(0.3)) await c.until(() => false, r.int(300));
    totals.bytes += c.sent;
    if (c.goaway) count(totals.goaways, c.goaway.code);
    if (c.closed) totals.closedByAgent++;
    c.destroy();
    round++;
  }
}

await Promise.all(Array.from({ length: CONNS }, (_, i) => connection(i)));
console.log(JSON.stringify(totals));
process.exit(0);
