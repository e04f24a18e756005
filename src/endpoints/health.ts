/** grpc.health.v1 on the Workload API socket, as spire-agent serves it; no security header needed. */
import * as grpc from '@grpc/grpc-js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

export function healthService(status: () => ServingStatus): grpc.UntypedServiceImplementation {
  return {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: status() }),
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.write({ status: status() });
    },
  };
}
