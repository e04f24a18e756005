/**
 * The floor on worker threads (issue 19's "measure before you commit"): the same canned FetchX509SVID
 * answer as floor-server.mjs, but the main thread only accepts and hands each connection's descriptor
 * to one of N worker threads, each with its own grpc-js server, the way the agent would serve on every
 * core once the accepting thread has identified the caller. What it measures: whether handing a
 * Unix socket to a worker works with grpc-js (connection injector on a socket opened from the fd), and
 * what serving on N threads buys over the one-thread floor on the same machine.
 *
 * The hand-off: the listener pauses new connections (pauseOnConnect, so libuv never reads or polls
 * them), the fd is dup(2)ed, the main thread's socket is destroyed (closing its own fd), and the copy
 * goes to the worker, which opens a net.Socket on it. Descriptors belong to the process, so this is
 * a number in a message, not a transfer.
 * With FLOOR_IDENTIFY=1 the main thread first does what the agent's accepting thread would keep:
 * the caller's identity from the kernel (this tree's dist/ PeerTracker: SO_PEERCRED, pidfd, start
 * time), passed along with the fd, so the main thread's share of each connection can be read off.
 * Usage: node floor-workers.mjs <socket> <svid.der> <key.der> <workers>   (prints "ready")
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';

if (isMainThread) {
  const [socketPath, certPath, keyPath, n] = process.argv.slice(2);
  const dup = koffi.load('libc.so.6').func('int dup(int)');
  const workers = await Promise.all(
    Array.from({ length: Number(n ?? 2) }, () => {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { certPath, keyPath } });
      return new Promise((resolve, reject) => {
        w.once('message', () => resolve(w));
        w.once('error', reject);
      });
    }),
  );
  let next = 0;
  const { REPO } = await import('./common.mjs');
  const tracker =
    process.env.FLOOR_IDENTIFY === '1'
      ? await (async () => {
          const { PeerTracker } = await import(`${REPO}/dist/src/proc/peer-tracker.js`);
          const { loadLibc } = await import(`${REPO}/dist/src/proc/libc.js`);
          const { ProcReader } = await import(`${REPO}/dist/src/proc/proc-reader.js`);
          return new PeerTracker(loadLibc(), new ProcReader());
        })()
      : undefined;
  rmSync(socketPath, { force: true });
  const server = createServer({ pauseOnConnect: true }, async (socket) => {
    const caller = tracker ? await tracker.track(socket).catch(() => undefined) : undefined;
    const fd = socket._handle?.fd;
    const copy = typeof fd === 'number' && fd >= 0 ? dup(fd) : -1;
    socket.destroy();
    if (copy < 0) return;
    workers[next].postMessage(caller ? { fd: copy, pid: caller.pid, uid: caller.uid, gid: caller.gid } : { fd: copy });
    next = (next + 1) % workers.length;
    // The pidfd stays with the accepting thread in the agent; here nothing asks it again.
    caller?.close();
  });
  server.listen(socketPath, () => {
    chmodSync(socketPath, 0o777);
    console.log('ready');
  });
  process.on('SIGTERM', () => process.exit(0));
} else {
  const grpc = await import('@grpc/grpc-js');
  const { loadSync } = await import('@grpc/proto-loader');
  const { REPO } = await import('./common.mjs');
  const pkg = grpc.loadPackageDefinition(loadSync(`${REPO}/proto/spiffe/workload/workload.proto`, { keepCase: true, longs: String, defaults: false }));
  const cert = readFileSync(workerData.certPath);
  const answer = { svids: [{ spiffe_id: 'spiffe://example.org/bench/floor', x509_svid: cert, x509_svid_key: readFileSync(workerData.keyPath), bundle: cert }] };
  const server = new grpc.Server();
  server.addService(pkg.SpiffeWorkloadAPI.service, { FetchX509SVID: (call) => call.write(answer) });
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  parentPort.on('message', ({ fd }) => injector.injectConnection(new Socket({ fd, readable: true, writable: true })));
  parentPort.postMessage('ready');
}
