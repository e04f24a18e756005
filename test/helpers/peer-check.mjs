// The real peer tracker (compiled, dist/) in a process of its own, so a test can run it under
// a uid and capabilities of its choosing, as the agent would run (non-root, no CAP_KILL, say).
// Listens on a Unix socket and tracks every caller that connects; each line "check" on stdin
// runs checkAlive() on every caller tracked so far. Prints one JSON object per line:
//   {"event":"listening"}
//   {"event":"tracked","pid":N,"uid":N} or {"event":"refused","code":...,"message":...}
//   {"event":"check","pid":N,"ok":true} or {"event":"check","pid":N,"code":...,"message":...}
//   {"event":"checked"} after each round
//
//   node peer-check.mjs <socket path>
import { chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'dist/src/proc');
const { loadLibc } = await import(pathToFileURL(join(dist, 'libc.js')).href);
const { PeerTracker } = await import(pathToFileURL(join(dist, 'peer-tracker.js')).href);
const { ProcReader } = await import(pathToFileURL(join(dist, 'proc-reader.js')).href);

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const tracker = new PeerTracker(loadLibc(), new ProcReader());
const callers = [];

const server = createServer(async (socket) => {
  socket.on('error', () => {});
  try {
    const caller = await tracker.track(socket);
    callers.push(caller);
    out({ event: 'tracked', pid: caller.pid, uid: caller.uid });
  } catch (err) {
    out({ event: 'refused', code: err.code, message: err.message });
  }
});
server.listen(process.argv[2], () => {
  // Callers of every uid must be able to connect, whatever the umask.
  chmodSync(process.argv[2], 0o777);
  out({ event: 'listening' });
});

createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line.trim() !== 'check') return;
  for (const c of callers) {
    try {
      await c.checkAlive();
      out({ event: 'check', pid: c.pid, ok: true });
    } catch (err) {
      out({ event: 'check', pid: c.pid, code: err.code, message: err.message });
    }
  }
  out({ event: 'checked' });
});
process.stdin.on('end', () => process.exit(0));
