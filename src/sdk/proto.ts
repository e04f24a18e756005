/**
 * Loads workload.proto at runtime. The proto declares no package, so the service is
 * `SpiffeWorkloadAPI` at the root of the loaded definition (paths `/SpiffeWorkloadAPI/...`).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { SpiffeAgentError } from '../errors.js';

/** Raw messages as proto-loader yields them (keepCase, longs/enums as strings, defaults on). */
export interface RawX509SVID {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint: string;
}
export interface RawX509SVIDResponse {
  svids: RawX509SVID[];
  crl: Buffer[];
  federated_bundles: Record<string, Buffer>;
}
export interface RawX509BundlesResponse {
  crl: Buffer[];
  bundles: Record<string, Buffer>;
}
export interface RawJWTSVID {
  spiffe_id: string;
  svid: string;
  hint: string;
}
export interface RawJWTSVIDResponse {
  svids: RawJWTSVID[];
}
export interface RawJWTBundlesResponse {
  bundles: Record<string, Buffer>;
}
/**
 * google.protobuf.Struct as proto-loader decodes it. protobufjs serves struct.proto from
 * its bundled JSON descriptors, so keepCase does not apply: Value fields are camelCase.
 */
export interface RawStruct {
  fields: Record<string, RawValue>;
}
export interface RawValue {
  kind?: string;
  nullValue?: string | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: RawStruct;
  listValue?: { values: RawValue[] };
}
export interface RawValidateJWTSVIDResponse {
  spiffe_id: string;
  claims: RawStruct | null;
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Walks up from this module to the package root, so it works from src/sdk and dist/src/sdk alike. */
export function findProtoDir(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'proto', 'spiffe', 'workload', 'workload.proto'))) {
      return join(dir, 'proto');
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new SpiffeAgentError('workloadapi_proto', 'workloadapi: proto/spiffe/workload/workload.proto not found above the SDK module; reinstall the package');
    }
    dir = parent;
  }
}

export function loadWorkloadDefinition(protoDir: string = findProtoDir()): grpc.GrpcObject {
  const def = protoLoader.loadSync('spiffe/workload/workload.proto', { ...LOADER_OPTIONS, includeDirs: [protoDir] });
  return grpc.loadPackageDefinition(def);
}

export type WorkloadServiceClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function workloadServiceClientConstructor(protoDir?: string): grpc.ServiceClientConstructor {
  return loadWorkloadDefinition(protoDir)['SpiffeWorkloadAPI'] as grpc.ServiceClientConstructor;
}
