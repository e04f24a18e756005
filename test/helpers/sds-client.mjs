// A real SDS v3 client process for integration tests (grpc-js + the repo's own protos).
// argv[2]: socket path. Reads JSON commands, one per line, on stdin:
//   {"stream": true}                 open StreamSecrets
//   {"send": {DiscoveryRequest}}     send on the open stream
//   {"close": true}                  half-close the stream
//   {"fetch": {DiscoveryRequest}}    unary FetchSecrets
//   {"delta": true}                  open DeltaSecrets and send one request
// Prints one JSON line per event: {"response": {...}} (Secrets unpacked, bytes as PEM text),
// {"status": {"code", "details"}} when a call ends, {"error": ...} on a local failure.
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../proto');
const def = protoLoader.loadSync(join(root, 'envoy/service/secret/v3/sds.proto'), {
  keepCase: true, longs: String, enums: String, defaults: false, oneofs: false, json: true, includeDirs: [root],
});
const pkg = grpc.loadPackageDefinition(def);
const Client = pkg.envoy.service.secret.v3.SecretDiscoveryService;
const client = new Client(`unix://${process.argv[2]}`, grpc.credentials.createInsecure());

const out = (o) => process.stdout.write(JSON.stringify(o, (k, v) => (v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString('latin1') : v)) + '\n');
let stream;
let pending = 0;
const done = () => {
  if (--pending === 0 && stdinClosed) process.exit(0);
};
let stdinClosed = false;

function watch(call) {
  pending++;
  call.on('data', (response) => out({ response }));
  call.on('status', (s) => out({ status: { code: grpc.status[s.code], details: s.details } }));
  call.on('error', () => {});
  call.on('close', done);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.stream) watch((stream = client.StreamSecrets()));
  else if (cmd.send) stream.write(cmd.send);
  else if (cmd.close) stream.end();
  else if (cmd.delta) {
    const d = client.DeltaSecrets();
    watch(d);
    d.write({ type_url: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret' });
  } else if (cmd.fetch) {
    pending++;
    client.FetchSecrets(cmd.fetch, (err, response) => {
      out(err ? { status: { code: grpc.status[err.code], details: err.details } } : { response });
      done();
    });
  }
}).on('close', () => {
  stdinClosed = true;
  if (pending === 0) process.exit(0);
});
