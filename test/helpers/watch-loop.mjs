// A workload that keeps a FetchX509SVID watch open, as go-spiffe's and grpc-js's clients do, and
// reconnects when the watch ends; it records how each watch ended. Used by the restart tests to
// check that a stopping agent ends a watch with GOAWAY on its connection first (so the client's
// retry opens a new connection instead of reusing this one) and then UNAVAILABLE, never a reset.
// It speaks HTTP/2 itself (node:http2) to see the GOAWAY, which gRPC clients act on but hide.
// argv[2]: socket path; argv[3]: the SPIFFE ID the answers must carry.
// On SIGTERM it prints one JSON line:
//   { watches, updates, ends: { "<how> after GOAWAY|without GOAWAY": n } }
import { connect as netConnect } from 'node:net';
import { fetchX509SVID } from './workload-h2.mjs';

const [socketPath, spiffeId] = process.argv.slice(2);
const stats = { watches: 0, updates: 0, ends: {} };
let stopping = false;
let current;
process.on('SIGTERM', () => {
  stopping = true;
  current?.();
});
const bump = (m, k) => (m[k] = (m[k] ?? 0) + 1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One watch on a fresh connection; resolves with how it ended. */
function watch() {
  return new Promise((resolve) => {
    let settled = false;
    let goaway = false;
    let session;
    const sock = netConnect({ path: socketPath });
    const done = (how) => {
      if (settled) return;
      settled = true;
      current = undefined;
      try {
        session?.destroy();
      } catch {}
      sock.destroy();
      resolve(`${how} ${goaway ? 'after GOAWAY' : 'without GOAWAY'}`);
    };
    current = () => done('stopped by the test');
    sock.once('error', (err) => done(`socket ${err.code ?? err.message}`));
    sock.once('connect', () => {
      stats.watches++;
      let req;
      ({ session, req } = fetchX509SVID(sock));
      session.on('goaway', () => (goaway = true));
      session.on('error', (err) => done(`session ${err.code ?? err.message}`));
      let body = Buffer.alloc(0);
      req.on('data', (c) => {
        body = Buffer.concat([body, c]);
        while (body.length >= 5 && body.length >= 5 + body.readUInt32BE(1)) {
          const msg = body.subarray(5, 5 + body.readUInt32BE(1));
          body = body.subarray(5 + msg.length);
          if (msg.includes(Buffer.from(spiffeId))) stats.updates++;
          else done('answer without the SPIFFE ID');
        }
      });
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) done(`grpc-status ${h['grpc-status']}`);
      });
      req.on('trailers', (t) => done(`grpc-status ${t['grpc-status']}`));
      req.on('error', (err) => done(`stream ${err.code ?? err.message}`));
      req.on('close', () => done('stream closed without a status'));
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
}

while (!stopping) {
  const how = await watch();
  if (stopping) break;
  bump(stats.ends, how);
  // A refused connection (no agent yet, self-bound) is retried after a short backoff; with
  // socket activation a new connection waits in the queue for the next agent.
  if (how.startsWith('socket')) await sleep(50);
}
process.stdout.write(JSON.stringify(stats) + '\n');
process.exit(0);
