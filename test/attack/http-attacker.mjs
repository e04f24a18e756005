/**
 * A local attacker of the agent's TCP listeners (Prometheus metrics, HTTP health), run as its
 * own process under another uid (test/integration/attack-http-listeners.test.ts spawns it as
 * 65534). Plain Node, no project code: only what any local user could do to a port on 127.0.0.1.
 * Every connection the agent closes is reopened, so the pressure lasts the whole attack.
 *
 *   http-attacker.mjs <kind> <port,port,...> --seconds S [--conns N]
 *
 *   slowloris   N connections per port, each sends a request line and then one header byte every 2 s
 *   flood       N connections per port, opened as fast as the agent accepts them, held silent
 *   huge        per port: a 10 MB request line, a 10 MB header, and a chunked body that never ends
 *   garbage     per port: random bytes, half-closed requests (FIN after part of a request), and
 *               complete requests followed by FIN whose answers are never read
 *   keepalive   N connections per port pipelining GETs, half of them never reading the answers
 *
 * Prints one JSON line: { kind, opened, refused, closedByAgent, responses, sent, errors } and exits.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const [kind, portList, ...rest] = process.argv.slice(2);
const flags = {};
for (let i = 0; i < rest.length; i += 2) flags[rest[i].replace(/^--/, '')] = rest[i + 1];
const ports = portList.split(',').map(Number);
const SECONDS = Number(flags.seconds ?? 5);
const CONNS = Number(flags.conns ?? 100);
const end = Date.now() + SECONDS * 1000;
const t = { kind, opened: 0, refused: 0, closedByAgent: 0, responses: 0, sent: 0, errors: {} };
const live = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const running = () => Date.now() < end;

/** One connection: resolves when it closes (by the agent, or by us at the end). */
function conn(port, onOpen, { read = true } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let open = false;
    s.setNoDelay(true);
    if (read) s.on('data', (c) => (t.responses += (c.toString('latin1').match(/HTTP\/1\.1 \d{3}/g) ?? []).length));
    else s.pause();
    s.once('connect', () => {
      open = true;
      t.opened++;
      live.add(s);
      onOpen(s);
    });
    s.on('error', (err) => {
      t.errors[err.code ?? err.message] = (t.errors[err.code ?? err.message] ?? 0) + 1;
      if (!open) t.refused++;
    });
    s.once('close', () => {
      live.delete(s);
      if (open && running()) t.closedByAgent++;
      resolve();
    });
  });
}

/** Keeps `n` connections made by `open` alive on `port` until the end, reopening each one the agent closes. */
async function sustain(port, n, open, opts) {
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (running()) {
        await conn(port, open, opts);
        if (running()) await sleep(20);
      }
    }),
  );
}

/** Writes `total` bytes of `unit` in 64 KiB pieces, respecting backpressure, while the socket is open. */
async function pour(s, unit, total) {
  const piece = Buffer.alloc(64 * 1024, unit);
  for (let sent = 0; sent < total && !s.destroyed && running(); sent += piece.length) {
    t.sent += piece.length;
    if (!s.write(piece)) await new Promise((r) => (s.once('drain', r), s.once('close', r)));
  }
}

const GET = (path) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

const attacks = {
  slowloris: (port) =>
    sustain(port, CONNS, (s) => {
      s.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      const tick = setInterval(() => (s.destroyed ? clearInterval(tick) : (s.write('a'), t.sent++)), 2000);
      s.once('close', () => clearInterval(tick));
    }),
  flood: (port) => sustain(port, CONNS, () => {}),
  huge: (port) =>
    Promise.all([
      sustain(port, 2, (s) => (s.write('GET /'), pour(s, 'a', 10 << 20))),
      sustain(port, 2, (s) => (s.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: '), pour(s, 'a', 10 << 20))),
      sustain(port, 2, (s) => {
        s.write('POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n');
        const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 'b'), Buffer.from('\r\n')]);
        (async () => {
          while (!s.destroyed && running()) {
            t.sent += chunk.length;
            if (!s.write(chunk)) await new Promise((r) => (s.once('drain', r), s.once('close', r)));
          }
        })();
      }),
    ]),
  garbage: (port) =>
    Promise.all([
      sustain(port, Math.ceil(CONNS / 3), (s) => {
        const b = randomBytes(4096);
        t.sent += b.length;
        s.write(b);
      }),
      sustain(port, Math.ceil(CONNS / 3), (s) => s.end('GET /metrics HTTP/1.1\r\nHost: 1'), { read: false }),
      sustain(port, Math.ceil(CONNS / 3), (s) => s.end(GET('/metrics') + GET('/live')), { read: false }),
    ]),
  keepalive: (port) =>
    Promise.all(
      [true, false].map((read) =>
        sustain(
          port,
          Math.max(1, CONNS / 2),
          (s) => {
            const batch = Buffer.from(GET('/metrics').repeat(50) + GET('/live').repeat(50));
            (async () => {
              while (!s.destroyed && running()) {
                t.sent += 100;
                if (!s.write(batch)) await new Promise((r) => (s.once('drain', r), s.once('close', r)));
                else await sleep(1);
              }
            })();
          },
          { read },
        ),
      ),
    ),
};

if (!attacks[kind]) {
  console.error(`unknown attack ${kind}`);
  process.exit(2);
}
const done = Promise.all(ports.map((p) => attacks[kind](p)));
await sleep(SECONDS * 1000);
for (const s of live) s.destroy();
// Connections still in the agent's accept queue may take long to fail; the totals do not wait for them.
await Promise.race([done, sleep(1000)]);
console.log(JSON.stringify(t));
process.exit(0);
