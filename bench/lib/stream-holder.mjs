/**
 * A workload holding many FetchX509SVID streams on one connection. For every message
 * it prints {i, t, key}: stream index, wall time (ms, sub-ms precision) and a short key
 * of the first SVID (its last certificate bytes), so the parent can tell rotations apart.
 * Prints "ready" once every stream has its first message; exits on SIGTERM.
 * argv: <socket path> <streams>
 */
import * as grpc from '@grpc/grpc-js';
import { workloadServiceClientConstructor } from '../../dist/src/sdk/proto.js';

const [socketPath, nArg] = process.argv.slice(2);
const n = Number(nArg);
const Ctor = workloadServiceClientConstructor();
const stub = new Ctor(`unix://${socketPath}`, grpc.credentials.createInsecure());
const md = new grpc.Metadata();
md.set('workload.spiffe.io', 'true');
let got = 0;
const calls = [];
for (let i = 0; i < n; i++) {
  const call = stub.FetchX509SVID({}, md);
  let first = true;
  call.on('data', (msg) => {
    const t = performance.timeOrigin + performance.now();
    const der = msg.svids?.[0]?.x509_svid;
    const key = der ? Buffer.from(der.subarray(der.length - 12)).toString('hex') : '';
    process.stdout.write(`${JSON.stringify({ i, t, key })}\n`);
    if (first) {
      first = false;
      if (++got === n) process.stdout.write('ready\n');
    }
  });
  call.on('error', (e) => {
    if (e.code !== grpc.status.CANCELLED) process.stderr.write(`stream ${i}: ${e.message}\n`);
  });
  calls.push(call);
}
process.on('SIGTERM', () => {
  for (const c of calls) c.cancel();
  stub.close();
  setTimeout(() => process.exit(0), 50).unref();
});
