/**
 * Loads the project's .proto files at run time (no generated code to keep in sync). Below the
 * authority and the endpoints, which both speak gRPC: the SPIRE server client and the
 * Workload API load their services from here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

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

/**
 * The services of one .proto file (and its imports) as grpc-js objects, the shape
 * grpc.loadPackageDefinition gives: namespaces down to service client constructors with `.service`.
 * Services only (no message type entries); built as loadServiceDefinitions builds them, from the
 * build's precompiled JSON when the file is a PROTO_SETS set of its own.
 */
export function loadProto(relPath: string): grpc.GrpcObject {
  const set = (Object.keys(PROTO_SETS) as ProtoSet[]).find((k) => PROTO_SETS[k].length === 1 && PROTO_SETS[k][0] === relPath);
  const defs = set ? loadServiceDefinitions(set) : serviceDefinitionsOf(parseProtoFiles([relPath]));
  return grpc.loadPackageDefinition(Object.fromEntries(defs) as unknown as Parameters<typeof grpc.loadPackageDefinition>[0]);
}

/**
 * Sets of .proto files loaded together as plain service definitions (loadServiceDefinitions).
 * `npm run build` writes each set's parsed form to dist/src/proto/compiled/<name>.json
 * (scripts/compile-protos.mjs), so the agent does not parse .proto text at start.
 */
export const PROTO_SETS = {
  'spire-server': ['spire/api/server/agent/v1/agent.proto', 'spire/api/server/entry/v1/entry.proto', 'spire/api/server/svid/v1/svid.proto', 'spire/api/server/bundle/v1/bundle.proto'],
  workload: ['spiffe/workload/workload.proto'],
  sds: ['envoy/service/secret/v3/sds.proto'],
  health: ['grpc/health/v1/health.proto'],
} as const satisfies Record<string, readonly string[]>;

export type ProtoSet = keyof typeof PROTO_SETS;

/** The files of a set parsed as proto-loader parses them: field names kept, imports from proto/ (else protobufjs' bundled google/protobuf types). */
export function parseProtoSet(set: ProtoSet): protobuf.Root {
  return parseProtoFiles(PROTO_SETS[set]);
}

function parseProtoFiles(files: readonly string[]): protobuf.Root {
  const dir = protoRoot();
  const root = new protobuf.Root();
  const fallback = root.resolvePath;
  root.resolvePath = (origin, target) => {
    if (isAbsolute(target)) return target;
    const p = join(dir, target);
    return existsSync(p) ? p : fallback(origin, target);
  };
  root.loadSync(
    files.filter((f) => existsSync(join(dir, f))).map((f) => join(dir, f)),
    { keepCase: true },
  );
  root.resolveAll();
  return root;
}

/** Where the build puts a set's precompiled JSON (next to this module in dist/). */
export function compiledProtoPath(set: ProtoSet): string {
  return fileURLToPath(new URL(`./compiled/${set}.json`, import.meta.url));
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    return Buffer.from(type.encode(type.fromObject(value)).finish());
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), TO_OBJECT);
}

/**
 * Every service of a set as a grpc-js ServiceDefinition, keyed by full name, with proto-loader's
 * (de)serialisation (fromObject + encode; decode + toObject with PROTO_OPTIONS). Built from
 * protobufjs reflection directly: proto-loader's package definition also encodes descriptors of
 * every message, ~20 ms at start that nothing here reads. Reads the build's precompiled JSON when
 * present (dist/), else parses the .proto files (tests run from src/).
 */
export function loadServiceDefinitions(set: ProtoSet): Map<string, grpc.ServiceDefinition> {
  const compiled = compiledProtoPath(set);
  return serviceDefinitionsOf(existsSync(compiled) ? rootFromJSON(JSON.parse(readFileSync(compiled, 'utf8')) as protobuf.INamespace) : parseProtoSet(set));
}

/** A set's precompiled JSON (Root.toJSON of parseProtoSet) back to resolved reflection. */
export function rootFromJSON(json: protobuf.INamespace): protobuf.Root {
  const root = protobuf.Root.fromJSON(json);
  root.resolveAll();
  return root;
}

/** The services under `root` as grpc-js ServiceDefinitions, keyed by full name. */
export function serviceDefinitionsOf(root: protobuf.Root): Map<string, grpc.ServiceDefinition> {
  const out = new Map<string, grpc.ServiceDefinition>();
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Service) {
        const name = obj.fullName.replace(/^\./, '');
        const def: Record<string, grpc.MethodDefinition<object, object>> = {};
        for (const m of obj.methodsArray) {
          const req = m.resolvedRequestType;
          const res = m.resolvedResponseType;
          if (!req || !res) throw new Error(`proto: ${name}.${m.name} has unresolved message types`);
          def[m.name] = {
            path: `/${name}/${m.name}`,
            requestStream: !!m.requestStream,
            responseStream: !!m.responseStream,
            requestSerialize: serializer(req),
            requestDeserialize: deserializer(req),
            responseSerialize: serializer(res),
            responseDeserialize: deserializer(res),
          };
        }
        out.set(name, def as grpc.ServiceDefinition);
      } else if (obj instanceof protobuf.Namespace) {
        visit(obj);
      }
    }
  };
  visit(root);
  return out;
}
