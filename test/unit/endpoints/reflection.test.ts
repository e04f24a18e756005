/**
 * gRPC reflection on the public socket, through the real UdsListener and buildGrpcServer with a
 * grpc-js reflection client (grpcurl against both agents is in test/interop/server/reflection.test.ts).
 * The peer tracker is FAKE (listenerFixture's callers with uids the test picks) and the pid has
 * no registration entry: reflection, like spire-agent's, needs no attestation.
 */
import * as grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildGrpcServer } from '../../../src/endpoints/server.js';
import { UdsListener } from '../../../src/endpoints/uds-listener.js';
import { mapEntryName } from '../../../src/endpoints/reflection-descriptors.js';
import { authorityFilter } from '../../../src/endpoints/h2-authority-filter.js';
import { systemClock } from '../../../src/clock.js';
import { loadLibc } from '../../../src/proc/libc.js';
import { FakeCaller, listenerFixture } from '../../helpers/request-path.js';

const require = createRequire(import.meta.url);
const loaded = (part: string): boolean => Object.keys(require.cache).some((k) => k.includes(part));

type Reply = Record<string, unknown> & { listServicesResponse?: { service: { name: string }[] }; fileDescriptorResponse?: { fileDescriptorProto: Buffer[] }; errorResponse?: { errorCode: number } };
type Duplex = grpc.ClientDuplexStream<object, Reply>;

function reflectionClient(path: string, version: 'v1' | 'v1alpha', authority?: string): grpc.Client & { ServerReflectionInfo(): Duplex } {
  // Required here, not imported at the top: proto-loader loads protobufjs/ext/descriptor, which the first test checks is not loaded before a call.
  const protoLoader = require('@grpc/proto-loader') as typeof ProtoLoader;
  const protoDir = join(dirname(require.resolve('@grpc/reflection')), '../proto');
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [protoDir], longs: String, enums: String, defaults: true, oneofs: true })) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
  };
  // A pool of its own per client, so each is its own connection (and its own uid below).
  return new pkg.grpc.reflection[version]!.ServerReflection(`unix://${path}`, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    ...(authority ? { 'grpc.default_authority': authority } : {}),
  }) as never;
}

function ask(stream: Duplex, req: object): Promise<Reply> {
  return new Promise((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
    stream.write(req);
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SERVICES = ['SpiffeWorkloadAPI', 'envoy.service.secret.v3.SecretDiscoveryService', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];

async function start(opts: { uidStreamShare?: number } = {}) {
  const { log, handler, at } = listenerFixture();
  const server = buildGrpcServer({ workload: handler, sds: { service: () => ({}) } as never }, () => 'SERVING');
  // Nothing of the reflection libraries is loaded until a reflection call arrives.
  const lazy = !loaded('@grpc/reflection') && !loaded('protobufjs/ext/descriptor');
  const path = join(mkdtempSync(join(tmpdir(), 'reflection-')), 'public', 'api.sock');
  const caller = { uid: 1000, pid: 100 };
  // The agent's own front (authority filter, per-uid share of open calls), as agent.ts builds it.
  const front = authorityFilter({ libc: loadLibc(), log, clock: systemClock });
  const listener = new UdsListener(path, server, { track: async () => new FakeCaller(caller.pid++, caller.uid) }, log, 0o777, front, opts);
  at.listener = listener;
  await listener.listen();
  cleanups.push(() => listener.close(100));
  const open = (version: 'v1' | 'v1alpha' = 'v1', authority?: string): Duplex => {
    const c = reflectionClient(path, version, authority);
    const s = c.ServerReflectionInfo();
    cleanups.push(() => {
      s.cancel();
      c.close();
    });
    return s;
  };
  return { open, caller, lazy };
}

describe('gRPC reflection on the public socket', () => {
  it("lists the socket's services on v1 and v1alpha to a caller with no entry, as grpc-go's reflection does", async () => {
    const { open, lazy } = await start();
    expect(lazy).toBe(true);
    for (const v of ['v1', 'v1alpha'] as const) {
      const r = await ask(open(v), { listServices: '*' });
      expect(r.listServicesResponse?.service.map((s) => s.name).sort(), v).toEqual(SERVICES);
    }
    expect(loaded('@grpc/reflection')).toBe(true);
  });

  it('describes SpiffeWorkloadAPI with descriptors a grpc-go client can link: imports listed, absolute type names, protoc map entry names', async () => {
    const { open } = await start();
    const r = await ask(open(), { fileContainingSymbol: 'SpiffeWorkloadAPI' });
    // Loaded here, not at the top: the first test checks that nothing loaded it before a call.
    const descriptor = require('protobufjs/ext/descriptor/index.js') as { FileDescriptorProto: { decode(b: Uint8Array): unknown } };
    const files = (r.fileDescriptorResponse?.fileDescriptorProto ?? []).map((b) => descriptor.FileDescriptorProto.decode(b) as unknown as { name: string; package?: string; dependency: string[]; messageType: { name: string; field: { name: string; typeName?: string }[]; nestedType: { name: string }[] }[] });
    const wl = files.find((f) => f.messageType.some((m) => m.name === 'X509SVIDResponse'))!;
    expect(wl).toBeDefined();
    // Every file it imports is listed and sent along.
    expect(wl.dependency.length).toBeGreaterThan(0);
    for (const d of wl.dependency) expect(files.map((f) => f.name)).toContain(d);
    const resp = wl.messageType.find((m) => m.name === 'X509SVIDResponse')!;
    expect(resp.nestedType.map((n) => n.name)).toEqual(['FederatedBundlesEntry']);
    expect(resp.field.find((f) => f.name === 'federated_bundles')?.typeName).toBe('.X509SVIDResponse.FederatedBundlesEntry');
    expect(wl.messageType.find((m) => m.name === 'ValidateJWTSVIDResponse')!.field.find((f) => f.name === 'claims')?.typeName).toBe('.google.protobuf.Struct');
    // A message of the package-less file is found by its bare name too.
    const msg = await ask(open(), { fileContainingSymbol: 'X509SVIDRequest' });
    expect(msg.errorResponse).toBeFalsy();
    expect(mapEntryName('federated_bundles')).toBe('FederatedBundlesEntry');
  });

  it('answers a client that sends the socket path as :authority (grpc-java), through the authority filter', async () => {
    const { open } = await start();
    const r = await ask(open('v1', '/tmp/spire-agent/public/api.sock'), { listServices: '*' });
    expect(r.listServicesResponse?.service).toHaveLength(SERVICES.length);
  });

  it("counts reflection streams in a uid's share of open calls, like every other call", async () => {
    const { open, caller } = await start({ uidStreamShare: 1 });
    const first = open();
    expect((await ask(first, { listServices: '*' })).listServicesResponse).toBeDefined();
    // The first stream is still open: uid 1000's second call is refused, another uid's is served.
    await expect(ask(open(), { listServices: '*' })).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    caller.uid = 2000;
    expect((await ask(open(), { listServices: '*' })).listServicesResponse).toBeDefined();
  });
});
