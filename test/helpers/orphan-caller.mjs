// A Workload API caller whose connecting process has exited: the parent connects to the
// agent's socket, hands the connection to a child and exits; once the parent is gone,
// the child sends one FetchJWTSVID over the inherited connection, as a forked worker of
// a short-lived launcher would. The kernel (SO_PEERCRED) names the dead parent.
// Prints {"status": <grpc-status>, "message": <grpc-message>} on stdout.
//
//   node orphan-caller.mjs parent <socket path>
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const [mode, arg] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (mode === 'parent') {
  const sock = net.connect(arg, () => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', String(process.pid)], {
      stdio: ['ignore', 'inherit', 'inherit', sock],
    });
    child.unref();
    // Give the agent time to track the connection while this process is still alive.
    setTimeout(() => process.exit(0), 300);
  });
  sock.on('error', (e) => {
    console.error(`connect: ${e.message}`);
    process.exit(3);
  });
} else if (mode === 'child') {
  const parent = Number(arg);
  const deadline = Date.now() + 10_000;
  while (existsSync(`/proc/${parent}`)) {
    if (Date.now() > deadline) {
      console.error(`parent ${parent} still exists`);
      process.exit(4);
    }
    await sleep(20);
  }
  const session = http2.connect('http://localhost', { createConnection: () => new net.Socket({ fd: 3, readable: true, writable: true }) });
  session.on('error', (e) => {
    console.error(`http2: ${e.message}`);
    process.exit(5);
  });
  const req = session.request({
    ':method': 'POST',
    ':path': '/SpiffeWorkloadAPI/FetchJWTSVID',
    'content-type': 'application/grpc',
    te: 'trailers',
    'workload.spiffe.io': 'true',
  });
  let status;
  let message = '';
  const take = (h) => {
    if (h['grpc-status'] !== undefined) {
      status = Number(h['grpc-status']);
      message = decodeURIComponent(String(h['grpc-message'] ?? ''));
    }
  };
  req.on('response', take);
  req.on('trailers', take);
  req.on('data', () => {});
  req.on('close', () => {
    process.stdout.write(`${JSON.stringify({ status, message })}\n`);
    session.close();
    process.exit(0);
  });
  // JWTSVIDRequest { audience: ["x"] } behind the 5-byte gRPC message prefix.
  const body = Buffer.from([0x0a, 0x01, 0x78]);
  const prefix = Buffer.from([0, 0, 0, 0, body.length]);
  req.end(Buffer.concat([prefix, body]));
} else {
  console.error('usage: orphan-caller.mjs parent <socket path>');
  process.exit(2);
}
