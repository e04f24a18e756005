// A real admin-socket client process for integration tests (grpc-js + the repo's own protos).
// argv: <socket path> <Service> <Method> <request JSON> [messages to wait for on a stream, default 1]
// Service is DelegatedIdentity, Debug or Logger. Prints one JSON line per response
// ({"response": ...}, bytes as base64) and ends with {"status": {"code", "details"}} on an error.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const [socketPath, service, method, reqJson, countArg] = process.argv.slice(2);
const root = join(dirname(fileURLToPath(import.meta.url)), '../../proto');
const FILES = {
  DelegatedIdentity: ['spire/api/agent/delegatedidentity/v1/delegatedidentity.proto', 'spire.api.agent.delegatedidentity.v1'],
  Debug: ['spire/api/agent/debug/v1/debug.proto', 'spire.agent.debug.v1'],
  Logger: ['spire/api/agent/logger/v1/logger.proto', 'spire.api.agent.logger.v1'],
};
const [file, pkgName] = FILES[service];
const def = protoLoader.loadSync(join(root, file), { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [root] });
let pkg = grpc.loadPackageDefinition(def);
for (const part of pkgName.split('.')) pkg = pkg[part];
const client = new pkg[service](`unix://${socketPath}`, grpc.credentials.createInsecure());
const out = (o) => process.stdout.write(JSON.stringify(o, (k, v) => (v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString('base64') : v)) + '\n');
const fail = (err) => {
  out({ status: { code: grpc.status[err.code], details: err.details } });
  process.exit(0);
};
const req = JSON.parse(reqJson ?? '{}');
const streaming = client[method].responseStream;
if (streaming) {
  let left = Number(countArg ?? 1);
  const call = client[method](req);
  call.on('data', (response) => {
    out({ response });
    if (--left === 0) {
      call.cancel();
      process.exit(0);
    }
  });
  call.on('error', (err) => (err.code === grpc.status.CANCELLED ? undefined : fail(err)));
} else {
  client[method](req, (err, response) => {
    if (err) fail(err);
    out({ response });
    process.exit(0);
  });
}
