/**
 * gRPC server reflection on the Workload API socket, as spire-agent registers it (grpc-go's
 * reflection.Register: grpc.reflection.v1 and v1alpha), so `grpcurl -unix -plaintext <sock> list`
 * and `describe` work without proto files. Served by @grpc/reflection (grpc-node's own), limited
 * to the services this server registered, itself included as grpc-go lists itself.
 *
 * Everything is built on the first reflection call, not at start: the library needs proto-loader's
 * package definition with file descriptors (~0.3-0.5 s of CPU here), which no other request needs.
 * The definitions registered at start are stubs whose (de)serialisers defer to the real ones.
 * Reflection runs on the same server as the Workload API, so the connection-level limits (authority
 * filter, per-uid shares, max streams) apply to it too; like grpc-go's, it attests nobody.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import type * as Reflection from '@grpc/reflection';
import { protoRoot } from './proto.js';
import { linkFileDescriptors } from './reflection-descriptors.js';

const VERSIONS = ['v1', 'v1alpha'] as const;
const METHOD = 'ServerReflectionInfo';

/** Public-socket services by full name → the .proto file that declares them. */
export const REFLECTED_FILES: Readonly<Record<string, string>> = {
  SpiffeWorkloadAPI: 'spiffe/workload/workload.proto',
  'envoy.service.secret.v3.SecretDiscoveryService': 'envoy/service/secret/v3/sds.proto',
  'grpc.health.v1.Health': 'grpc/health/v1/health.proto',
};

type Built = Map<string, readonly [grpc.MethodDefinition<object, object>, grpc.handleBidiStreamingCall<object, object>]>;

/**
 * The libraries are loaded on the first call, synchronously (grpc-js calls deserialisers
 * synchronously): importing them at start costs ~100 ms of every agent start for a debugging aid.
 */
const lazyRequire = createRequire(import.meta.url);

/** The library's own reflection protos, so the reflection services describe themselves too. */
function libraryProtoDir(): string {
  return join(dirname(lazyRequire.resolve('@grpc/reflection')), '../proto');
}

/**
 * @grpc/reflection 1.0.4 names a symbol of a file with no package (workload.proto) with a leading
 * dot (`.SpiffeWorkloadAPI`); grpc-go and its clients use the bare name. Strip it in answers and
 * add it to questions about those names.
 */
function fixNoPackageNames(impl: grpc.handleBidiStreamingCall<object, object>, topLevel: ReadonlySet<string>): grpc.handleBidiStreamingCall<object, object> {
  return (call) => {
    const write = call.write.bind(call);
    call.write = ((msg: { listServicesResponse?: { service?: { name: string }[] } }, ...rest: unknown[]) => {
      for (const s of msg.listServicesResponse?.service ?? []) s.name = s.name.replace(/^\./, '');
      return (write as (...a: unknown[]) => boolean)(msg, ...rest);
    }) as typeof call.write;
    const emit = call.emit.bind(call);
    call.emit = ((event: string, ...args: unknown[]) => {
      const req = args[0] as { fileContainingSymbol?: string } | undefined;
      if (event === 'data' && req?.fileContainingSymbol && topLevel.has(req.fileContainingSymbol.split('.')[0]!)) {
        req.fileContainingSymbol = `.${req.fileContainingSymbol}`;
      }
      return emit(event, ...args);
    }) as typeof call.emit;
    impl(call);
  };
}

function build(services: readonly string[]): Built {
  const protoLoader = lazyRequire('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
  const { ReflectionService } = lazyRequire('@grpc/reflection') as typeof Reflection;
  const reflectionDir = libraryProtoDir();
  const files = [...services.map((s) => REFLECTED_FILES[s]!), ...VERSIONS.map((v) => `grpc/reflection/${v}/reflection.proto`)];
  const pkg = protoLoader.loadSync(files, { keepCase: true, includeDirs: [protoRoot(), reflectionDir] });
  const fileDescriptorProtos = linkFileDescriptors(Object.values(pkg).flatMap((d) => ('fileDescriptorProtos' in d ? (d.fileDescriptorProtos as Uint8Array[]) : [])));
  const names = [...services, ...VERSIONS.map((v) => `grpc.reflection.${v}.ServerReflection`)];
  const topLevel = new Set(services.filter((s) => !s.includes('.')));
  for (const s of services.filter((x) => !x.includes('.'))) {
    // Message names of a no-package file are top-level symbols too (describe X509SVIDRequest).
    for (const key of Object.keys(pkg)) if (!key.includes('.') && key !== s) topLevel.add(key);
  }
  const linked = { linked: { format: 'Protocol Buffer 3 DescriptorProto', type: {}, fileDescriptorProtos } } as unknown as protoLoader.PackageDefinition;
  const reflection = new ReflectionService(linked, { services: names.map((n) => (n.includes('.') ? n : `.${n}`)) });
  const built: Built = new Map();
  reflection.addToServer({
    addService: (def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) => {
      const method = def[METHOD] as grpc.MethodDefinition<object, object>;
      built.set(method.path, [method, fixNoPackageNames(impl[METHOD] as grpc.handleBidiStreamingCall<object, object>, topLevel)]);
    },
  });
  return built;
}

/**
 * Registers both reflection versions through `add` (the server's tracked addService) for the
 * named services. Nothing is loaded until the first reflection call.
 */
export function addReflection(add: (def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) => void, services: readonly string[]): void {
  let built: Built | undefined;
  const get = (path: string): NonNullable<ReturnType<Built['get']>> => {
    built ??= build(services);
    const found = built.get(path);
    if (!found) throw new Error(`reflection: @grpc/reflection did not register ${path}`);
    return found;
  };
  for (const v of VERSIONS) {
    const path = `/grpc.reflection.${v}.ServerReflection/${METHOD}`;
    const def: grpc.MethodDefinition<object, object> = {
      path,
      requestStream: true,
      responseStream: true,
      requestSerialize: (x) => get(path)[0].requestSerialize(x),
      requestDeserialize: (b) => get(path)[0].requestDeserialize(b),
      responseSerialize: (x) => get(path)[0].responseSerialize(x),
      responseDeserialize: (b) => get(path)[0].responseDeserialize(b),
    };
    add({ [METHOD]: def } as grpc.ServiceDefinition, { [METHOD]: (call: grpc.ServerDuplexStream<object, object>) => get(path)[1](call) });
  }
}
