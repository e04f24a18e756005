/**
 * The streaming calls open on the agent's sockets, so shutdown can end them on purpose
 * instead of waiting for watchers that never hang up. Each is ended with UNAVAILABLE:
 * go-spiffe, py-spiffe and Envoy take that as "retry later" (CANCELLED, what a reset
 * stream would give, makes go-spiffe stop watching for good).
 *
 * A stream is ended only once it has sent its first response: a workload that asked just
 * before SIGTERM (FetchX509SVID, FetchJWTBundles, an SDS request) still gets its answer from
 * the stopping agent, then UNAVAILABLE, and its watch resumes on the next agent. Streams that
 * open while shutting down are served the same way (they arrive on connections the agent
 * accepted before it stopped accepting). One that has sent nothing shortly before the shutdown
 * grace period ends is ended then (endRemaining), before its connection is closed.
 */
import * as grpc from '@grpc/grpc-js';
import { toServiceError, StatusError } from './status.js';

/** What a streaming call exposes that we use: grpc-js ends it with the status of an 'error' event, and its messages go through write(). */
type StreamCall = NodeJS.EventEmitter & { write?: (...args: unknown[]) => boolean };

const SHUTTING_DOWN = 'the agent is shutting down; retry against its next start';
/** Set on a call once it has written a message. */
const ANSWERED = Symbol('answered');
/** Set on a call while shutting down: what to do after its first message. */
const END_AFTER_ANSWER = Symbol('endAfterAnswer');

type Tracked = StreamCall & { [ANSWERED]?: true; [END_AFTER_ANSWER]?: (call: StreamCall) => void };

/**
 * Installed as each tracked call's write(): one shared function, so a call holds no closure
 * for it. Marks the call answered, and ends it after this message when shutdown is waiting for it.
 */
function trackedWrite(this: Tracked, ...args: unknown[]): boolean {
  this[ANSWERED] = true;
  const write = (Object.getPrototypeOf(this) as { write: (...a: unknown[]) => boolean }).write;
  const ok = write.apply(this, args);
  const end = this[END_AFTER_ANSWER];
  if (end) {
    this[END_AFTER_ANSWER] = undefined;
    // Next turn: the handler may still be writing in this one (an SDS answer with several resources).
    setImmediate(end, this);
  }
  return ok;
}

export class OpenStreams {
  private readonly calls = new Set<Tracked>();
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
      out[key] = ((call: Tracked) => {
        this.calls.add(call);
        const forget = (): void => void this.calls.delete(call);
        // on(), not once(): forget() is idempotent, and every once() wrapper is ≈0.2 KiB an open stream holds.
        for (const ev of ['close', 'finish', 'cancelled', 'error']) call.on(ev, forget);
        if (typeof call.write === 'function') call.write = trackedWrite;
        // Shutting down already: served until its first answer (see the header).
        if (this.ending) call[END_AFTER_ANSWER] = this.endOne;
        return handler(call);
      }) as grpc.UntypedHandleCall;
    }
    return out;
  }

  /**
   * Ends, with UNAVAILABLE, every open stream that has answered, and every other one (open
   * now or later) right after its first answer. Returns how many ended now.
   */
  endAll(): number {
    this.ending = true;
    let ended = 0;
    for (const call of [...this.calls]) {
      if (call[ANSWERED] || typeof call.write !== 'function') {
        this.endOne(call);
        ended++;
      } else {
        call[END_AFTER_ANSWER] = this.endOne;
      }
    }
    return ended;
  }

  /**
   * Ends every stream still open with UNAVAILABLE, answered or not: shortly before the grace
   * period ends, a stream that never answered (an SDS stream whose client has not sent its
   * request yet, say) gets a status its client retries, not a connection closed under it.
   */
  endRemaining(): number {
    const open = [...this.calls];
    for (const call of open) this.endOne(call);
    return open.length;
  }

  /** Streams still waiting for their first answer (shutdown reports them). */
  get unanswered(): number {
    let n = 0;
    for (const call of this.calls) if (!call[ANSWERED]) n++;
    return n;
  }

  private readonly endOne = (call: StreamCall): void => {
    if (!this.calls.delete(call as Tracked)) return;
    call.emit('error', unavailable());
  };
}

function unavailable(): grpc.ServiceError {
  return toServiceError(new StatusError(grpc.status.UNAVAILABLE, SHUTTING_DOWN)) as grpc.ServiceError;
}
