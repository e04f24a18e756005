/**
 * What an agent's `grpc.health.v1.Health` answers on its Workload API socket, in the differential
 * test's canonical form: `Check` without a service name, `Check` with one, and the first answer of
 * `Watch`. Each is `{ status }` or `{ code }` (the gRPC code name), never a message text, which is
 * each agent's own.
 */
import * as grpc from '@grpc/grpc-js';
import { loadProto } from '../../../src/endpoints/proto.js';

type HealthAnswer = { status: string } | { code: string };
export interface HealthCanon {
  check: HealthAnswer;
  checkService: HealthAnswer;
  watch: HealthAnswer;
}

interface HealthClient extends grpc.Client {
  Check(req: { service: string }, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: { status: string }) => void): void;
  Watch(req: { service: string }, opts: grpc.CallOptions): grpc.ClientReadableStream<{ status: string }>;
}

const codeName = (code: number): string => grpc.status[code] ?? String(code);

export async function healthCanon(socketPath: string): Promise<HealthCanon> {
  const pkg = loadProto('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const c = new pkg.grpc.health.v1.Health(`unix://${socketPath}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  const deadline = () => ({ deadline: Date.now() + 5_000 });
  const check = (service: string) =>
    new Promise<HealthAnswer>((resolve) => c.Check({ service }, deadline(), (e, r) => resolve(e ? { code: codeName(e.code) } : { status: r.status })));
  // The first message or the error that ends the stream, whichever comes first; the stream is then cancelled.
  const watch = () =>
    new Promise<HealthAnswer>((resolve) => {
      const s = c.Watch({ service: '' }, deadline());
      s.on('data', (r: { status: string }) => {
        resolve({ status: r.status });
        s.cancel();
      });
      s.on('error', (e: grpc.ServiceError) => resolve({ code: codeName(e.code) }));
      s.on('end', () => resolve({ code: 'ended without a message' }));
    });
  try {
    return { check: await check(''), checkService: await check('SpiffeWorkloadAPI'), watch: await watch() };
  } finally {
    c.close();
  }
}
