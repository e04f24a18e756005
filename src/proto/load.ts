/**
 * Loads the project's .proto files at run time (no generated code to keep in sync). Below the
 * authority and the endpoints, which both speak gRPC: the SPIRE server client and the
 * Workload API load their services from here.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The package root holds proto/; found by walking up so both src/ (tests) and dist/src/ work. */
export function protoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'proto', 'spiffe', 'workload', 'workload.proto'))) return join(dir, 'proto');
    dir = dirname(dir);
  }
  throw new Error('endpoints: cannot find the proto/ directory next to the installed package');
}

export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export function loadProto(relPath: string): grpc.GrpcObject {
  const root = protoRoot();
  const def = protoLoader.loadSync(join(root, relPath), { ...PROTO_OPTIONS, includeDirs: [root] });
  return grpc.loadPackageDefinition(def);
}
