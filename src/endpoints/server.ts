/** Assembles the gRPC services served on the Workload API socket. */
import * as grpc from '@grpc/grpc-js';
import { healthService, type ServingStatus } from './health.js';
import { loadProto } from './proto.js';
import { addReflection } from './reflection.js';
import type { OpenStreams } from './open-streams.js';
import type { SdsHandler } from './sds/handler.js';
import type { WorkloadHandler } from './workload/handler.js';
import { withRpcMetrics } from './rpc-metrics.js';
import { NO_METRICS, type Metrics } from '../telemetry/metrics/index.js';

interface ServiceHolder {
  service: grpc.ServiceDefinition;
}

/** Services to serve; one left out (`disable_workload_api`, `disable_sds_api`) is not registered. */
export interface PublicServices {
  readonly workload?: WorkloadHandler | undefined;
  readonly sds?: SdsHandler | undefined;
}

/**
 * Options of every gRPC server of the agent. Channelz is off: nothing serves it, and with it on
 * grpc-js keeps, per connection and per call, a channelz socket entry, call trackers, trace
 * strings and their closures (≈2 KiB of heap per open stream, and CPU on every connection).
 */
export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  // Per connection. SPIFFE clients open one to three streams on a connection; every open stream
  // holds memory, so this (with the per-uid share of open calls, uid-share.ts) bounds what one
  // client can make the agent hold. Streams past it are refused by HTTP/2 itself (REFUSED_STREAM),
  // which clients retry.
  'grpc.max_concurrent_streams': 100,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.enable_channelz': 0,
  // Every connection is pinged every 10 s and closed when it has not answered within 5 s: a
  // client that stopped reading (abandoned, half-closed, or trickling bytes) and, under Node 20,
  // a session nghttp2 has ended after a protocol error (Node 20 then stops reading and never
  // notices the client leave) give their descriptors back within 15 s. Every HTTP/2 client
  // answers PINGs on its own; one ping per 10 s costs an idle connection next to nothing.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
};

/** `metrics`: spire-agent's RPC metrics for every method (rpc-metrics.ts). `streams`, when given, tracks streaming calls so shutdown can end them (see open-streams.ts). */
export function buildGrpcServer(services: PublicServices, status: () => ServingStatus, streams?: OpenStreams, metrics: Metrics = NO_METRICS): grpc.Server {
  const server = new grpc.Server(GRPC_SERVER_OPTIONS);
  const add = (def: grpc.ServiceDefinition, given: grpc.UntypedServiceImplementation): void => {
    const impl = withRpcMetrics(def, given, metrics);
    server.addService(def, streams ? streams.track(def, impl) : impl);
  };
  if (services.workload) {
    const wl = loadProto('spiffe/workload/workload.proto') as unknown as Record<string, ServiceHolder>;
    add(wl.SpiffeWorkloadAPI!.service, services.workload.service());
  }
  if (services.sds) {
    const sds = loadProto('envoy/service/secret/v3/sds.proto') as unknown as {
      envoy: { service: { secret: { v3: Record<string, ServiceHolder> } } };
    };
    add(sds.envoy.service.secret.v3.SecretDiscoveryService!.service, services.sds.service());
  }
  const health = loadProto('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: Record<string, ServiceHolder> } } };
  add(health.grpc.health.v1.Health!.service, healthService(status));
  // As spire-agent's reflection.Register: every service of this server, described on request.
  addReflection(add, [...(services.workload ? ['SpiffeWorkloadAPI'] : []), ...(services.sds ? ['envoy.service.secret.v3.SecretDiscoveryService'] : []), 'grpc.health.v1.Health']);
  return server;
}
