// A workload that keeps asking for its X.509-SVID, each time on a new connection, until it gets
// SIGTERM, and counts what connect(2) and the fetch did. Used by the restart tests, which need to
// see each refused connection, so it dials the socket itself (net.connect) and speaks HTTP/2 to
// the Workload API over it (a gRPC client would hide refusals behind its reconnect backoff).
// argv[2]: socket path; argv[3]: the SPIFFE ID the answer must carry.
// On SIGTERM it finishes the attempt in flight and prints one JSON line:
//   { attempts, ok, refused: {ENOENT: n, ...}, failed: {reason: n}, lastOk: bool, okAt: [ms since start of last ok] }
import { connect as netConnect } from 'node:net';
import { fetchX509SVID } from './workload-h2.mjs';

const [socketPath, spiffeId] = process.argv.slice(2);
const REFUSED = new Set(['ECONNREFUSED', 'ENOENT']);
const stats = { attempts: 0, ok: 0, refused: {}, failed: {}, lastOk: false, lastOkAt: 0 };
let stopping = false;
process.on('SIGTERM', () => (stopping = true));
const bump = (m, k) => (m[k] = (m[k] ?? 0) + 1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One FetchX509SVID on a fresh connection: 'ok', or why not. Waits as long as a queued connection needs. */
function attempt() {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        session?.destroy();
      } catch {}
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ failed: 'timeout 20s' }), 20_000);
    let session;
    const sock = netConnect({ path: socketPath });
    sock.once('error', (err) => done(REFUSED.has(err.code) && !session ? { refused: err.code } : { failed: `socket ${err.code ?? err.message}` }));
    sock.once('connect', () => {
      let req;
      ({ session, req } = fetchX509SVID(sock));
      session.on('error', (err) => done({ failed: `session ${err.code ?? err.message}` }));
      let body = Buffer.alloc(0);
      req.on('data', (c) => {
        body = Buffer.concat([body, c]);
        if (body.length >= 5 && body.length >= 5 + body.readUInt32BE(1)) {
          done(body.includes(Buffer.from(spiffeId)) ? 'ok' : { failed: 'answer without the SPIFFE ID' });
        }
      });
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) done({ failed: `grpc-status ${h['grpc-status']}` });
      });
      req.on('trailers', (t) => done({ failed: `grpc-status ${t['grpc-status']} ${t['grpc-message'] ?? ''}`.trim() }));
      req.on('error', (err) => done({ failed: `stream ${err.code ?? err.message}` }));
      req.on('close', () => done({ failed: 'stream closed without an answer' }));
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
}

const t0 = Date.now();
while (!stopping) {
  stats.attempts++;
  const r = await attempt();
  if (r === 'ok') {
    stats.ok++;
    stats.lastOk = true;
    stats.lastOkAt = Date.now() - t0;
  } else {
    stats.lastOk = false;
    if (r.refused) bump(stats.refused, r.refused);
    else bump(stats.failed, r.failed);
    // A real client backs off a little before it tries again.
    await sleep(50);
  }
  await sleep(20);
}
process.stdout.write(JSON.stringify(stats) + '\n');
process.exit(0);
