/**
 * spire-agent's RPC metrics around a gRPC service implementation (its middleware.WithMetrics and
 * per-service connection metrics): per method, a counter and an `_elapsed_time` summary by final
 * status; per API, every call counted (`<api>_connection`) and those in progress (`<api>_connections`).
 * Handles are made once per method here, so a call only bumps numbers.
 */
import type * as grpc from '@grpc/grpc-js';
import { rpcKey, statusName, type CallHandle, type GaugeHandle, type CounterHandle, type Metrics } from '../telemetry/metrics/index.js';

type Emitter = NodeJS.EventEmitter;
type Unary = (call: Emitter, cb: (err: unknown, value?: unknown, trailer?: unknown, flags?: unknown) => void) => unknown;
type Streaming = (call: Emitter) => unknown;

/** The API whose connection metrics a service feeds (spire-agent counts Workload API and SDS calls). */
function apiOf(path: string): string | undefined {
  if (path.startsWith('/SpiffeWorkloadAPI/')) return 'workload_api';
  if (path.startsWith('/envoy.service.secret.v3.SecretDiscoveryService/')) return 'sds_api';
  return undefined;
}

export function withRpcMetrics(definition: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation, metrics: Metrics): grpc.UntypedServiceImplementation {
  if (!metrics.enabled) return impl;
  const out: grpc.UntypedServiceImplementation = { ...impl };
  for (const [name, method] of Object.entries(definition)) {
    const key = name in impl ? name : method.originalName;
    const handler = key === undefined ? undefined : impl[key];
    if (key === undefined || !handler || method.requestStream && !method.responseStream) continue;
    const call = metrics.call(rpcKey(method.path));
    const api = apiOf(method.path);
    const conn = api ? { count: metrics.counter([api, 'connection']), open: metrics.gauge([api, 'connections']) } : undefined;
    out[key] = (method.responseStream ? streaming(handler as Streaming, call, conn) : unary(handler as Unary, call, conn)) as grpc.UntypedHandleCall;
  }
  return out;
}

interface Conn {
  readonly count: CounterHandle;
  readonly open: GaugeHandle;
}

function unary(handler: Unary, h: CallHandle, conn: Conn | undefined): Unary {
  return (call, cb) => {
    const t0 = performance.now();
    conn?.count.inc();
    conn?.open.add(1);
    return handler(call, (err, ...rest) => {
      conn?.open.add(-1);
      h.done(err ? statusName(err) : 'OK', performance.now() - t0);
      cb(err, ...rest);
    });
  };
}

/** A stream's status is known when it ends: OK when the agent ends it, the error's code, or Canceled by the client. */
function streaming(handler: Streaming, h: CallHandle, conn: Conn | undefined): Streaming {
  return (call) => {
    const t0 = performance.now();
    conn?.count.inc();
    conn?.open.add(1);
    let ended = false;
    const end = (status: string): void => {
      if (ended) return;
      ended = true;
      conn?.open.add(-1);
      h.done(status, performance.now() - t0);
    };
    call.on('error', (err: unknown) => end(statusName(err)));
    // spire-agent's stream handlers return nil when the client goes away, so it counts them OK.
    call.on('cancelled', () => end('OK'));
    call.on('finish', () => end('OK'));
    return handler(call);
  };
}
