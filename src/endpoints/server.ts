/** Assembles the gRPC services served on the Workload API socket. */
import * as grpc from '@grpc/grpc-js';
import { healthService, type ServingStatus } from './health.js';
import { loadProto } from './proto.js';
import type { WorkloadHandler } from './workload/handler.js';

interface ServiceHolder {
  service: grpc.ServiceDefinition;
}

export function buildGrpcServer(workload: WorkloadHandler, status: () => ServingStatus): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_concurrent_streams': 1000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const wl = loadProto('spiffe/workload/workload.proto') as unknown as Record<string, ServiceHolder>;
  server.addService(wl.SpiffeWorkloadAPI!.service, workload.service());
  const health = loadProto('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: Record<string, ServiceHolder> } } };
  server.addService(health.grpc.health.v1.Health!.service, healthService(status));
  return server;
}
