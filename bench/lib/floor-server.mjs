/**
 * The floor of bench/per-connection.mjs: a bare grpc-js server on a Unix socket that answers
 * FetchX509SVID with one canned response (the same proto as the agent; no peer credentials, no
 * attestation, no audit, no `:authority` handling) and keeps the stream open, as an agent does.
 * Whatever the agent costs per connection above this is ours, not Node's or grpc-js's.
 * Usage: node floor-server.mjs <socket> <svid.der> <key.der>   (prints "ready" once listening)
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { REPO } from './common.mjs';

const [socketPath, certPath, keyPath] = process.argv.slice(2);
const pkg = grpc.loadPackageDefinition(loadSync(`${REPO}/proto/spiffe/workload/workload.proto`, { keepCase: true, longs: String, defaults: false }));
const cert = readFileSync(certPath);
const answer = { svids: [{ spiffe_id: 'spiffe://example.org/bench/floor', x509_svid: cert, x509_svid_key: readFileSync(keyPath), bundle: cert }] };
const server = new grpc.Server();
server.addService(pkg.SpiffeWorkloadAPI.service, {
  FetchX509SVID: (call) => call.write(answer), // open until the client cancels
});
rmSync(socketPath, { force: true });
server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  chmodSync(socketPath, 0o777); // clients run under other uids, as they do against an agent
  console.log('ready');
});
process.on('SIGTERM', () => {
  server.forceShutdown();
  process.exit(0);
});
