/**
 * A FAKE Workload API server: our own in-test double of the SpiffeWorkloadAPI protocol
 * on a temporary Unix socket, so the SDK and CLI can be exercised without the daemon.
 * It is not the agent; it answers whatever each test scripts, and records the
 * security header every call carried.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadWorkloadDefinition, findProtoDir } from '../../../src/sdk/proto.js';
import { SECURITY_HEADER } from '../../../src/sdk/client.js';

type Handler = (call: grpc.ServerWritableStream<unknown, unknown> & grpc.ServerUnaryCall<unknown, unknown>, cb?: grpc.sendUnaryData<unknown>) => void;

export interface RecordedCall {
  method: string;
  header: string[];
  request: unknown;
}

export interface FakeWorkloadAPI {
  readonly dir: string;
  readonly socketPath: string;
  /** `unix:///...` */
  readonly address: string;
  readonly calls: RecordedCall[];
  close(): Promise<void>;
}

export type FakeHandlers = Partial<
  Record<'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTSVID' | 'FetchJWTBundles' | 'ValidateJWTSVID', Handler>
>;

export function grpcError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

export async function startFakeWorkloadAPI(handlers: FakeHandlers): Promise<FakeWorkloadAPI> {
  const dir = mkdtempSync(join(tmpdir(), 'sdk-fake-'));
  const socketPath = join(dir, 'api.sock');
  const service = (loadWorkloadDefinition(findProtoDir())['SpiffeWorkloadAPI'] as grpc.ServiceClientConstructor).service;
  const calls: RecordedCall[] = [];
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(service)) {
    impl[method] = ((call: Parameters<Handler>[0], cb?: grpc.sendUnaryData<unknown>) => {
      calls.push({ method, header: call.metadata.get(SECURITY_HEADER).map(String), request: call.request });
      const h = handlers[method as keyof FakeHandlers];
      if (!h) {
        const err = grpcError(grpc.status.UNIMPLEMENTED, `${method} not scripted`);
        if (cb) cb(err);
        else call.emit('error', err);
        return;
      }
      h(call, cb);
    }) as grpc.UntypedHandleCall;
  }
  const server = new grpc.Server();
  server.addService(service, impl);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  return {
    dir,
    socketPath,
    address: `unix://${socketPath}`,
    calls,
    async close() {
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
