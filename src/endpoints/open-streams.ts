/**
 * The streaming calls open on the agent's sockets, so shutdown can end them on purpose
 * instead of waiting for watchers that never hang up. Each is ended with UNAVAILABLE:
 * go-spiffe, py-spiffe and Envoy take that as "retry later" (CANCELLED, what a reset
 * stream would give, makes go-spiffe stop watching for good).
 */
import * as grpc from '@grpc/grpc-js';
import { toServiceError, StatusError } from './status.js';

/** What a streaming call exposes that we use: grpc-js ends it with the status of an 'error' event. */
type StreamCall = NodeJS.EventEmitter;

const SHUTTING_DOWN = 'the agent is shutting down; retry against its next start';

export class OpenStreams {
  private readonly calls = new Set<StreamCall>();
  private ending = false;

  get size(): number {
    return this.calls.size;
  }

  /** The implementation of `definition` with every streaming method's calls tracked. */
  track(definition: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
    const out: grpc.UntypedServiceImplementation = { ...impl };
    for (const [name, method] of Object.entries(definition)) {
      if (!method.responseStream) continue;
      const key = name in impl ? name : method.originalName;
      const handler = key === undefined ? undefined : (impl[key] as ((call: StreamCall) => unknown) | undefined);
      if (key === undefined || !handler) continue;
      out[key] = ((call: StreamCall) => {
        if (this.ending) {
          call.emit('error', unavailable());
          return;
        }
        this.calls.add(call);
        const forget = (): void => void this.calls.delete(call);
        // on(), not once(): forget() is idempotent, and every once() wrapper is ≈0.2 KiB an open stream holds.
        for (const ev of ['close', 'finish', 'cancelled', 'error']) call.on(ev, forget);
        return handler(call);
      }) as grpc.UntypedHandleCall;
    }
    return out;
  }

  /** Ends every open stream with UNAVAILABLE, and any that opens from now on. Returns how many. */
  endAll(): number {
    this.ending = true;
    const open = [...this.calls];
    this.calls.clear();
    for (const call of open) call.emit('error', unavailable());
    return open.length;
  }
}

function unavailable(): grpc.ServiceError {
  return toServiceError(new StatusError(grpc.status.UNAVAILABLE, SHUTTING_DOWN)) as grpc.ServiceError;
}
