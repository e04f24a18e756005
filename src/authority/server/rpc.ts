/**
 * Promise and stream helpers over proto-loader clients (methods looked up by name, since the
 * clients are generic). Every call to the server carries a deadline: a server that accepts the
 * connection and never answers (a stopped process, a paused VM, a stuck load balancer) must
 * fail a call in bounded time, so the agent knows it is unreachable and keeps serving from its
 * cache instead of waiting.
 */
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../clock.js';
import { ServerAuthorityError } from './authority-errors.js';

/**
 * The deadline of every call to the server but node attestation. A hung server is recognised
 * only by a call that times out: HTTP/2 keepalive pings would tell a hung server from a slow
 * one sooner, but spire-server v1.13.3 keeps grpc-go's default enforcement (at most one ping
 * per 5 minutes, none without an open call) and closes the connection with GOAWAY
 * "too_many_pings" after the third early one, failing every call on it.
 *
 * 4 s is under the shortest deadline workloads commonly give a fetch (5 s: spire-agent's own
 * `api fetch -timeout`, go-spiffe examples), so a workload that waits on a call (a JWT-SVID with
 * nothing cached, an entry that changed) is answered, or falls back to the cache, before it gives
 * up. A working spire-server answers each of these calls in milliseconds (single signatures,
 * X.509 batches of at most 50 CSRs in a wave, entries from its in-memory cache); a slower one
 * gets smaller X.509 batches (the batcher halves after a failed call).
 */
export const SERVER_CALL_TIMEOUT_MS = 4_000;
/** AttestAgent: the server's node attestor may ask a cloud or Kubernetes API; spire-agent's 30 s RPC budget. */
export const ATTEST_TIMEOUT_MS = 30_000;
/** A whole entry sync stream may page through many entries; each answer must still come within SERVER_CALL_TIMEOUT_MS. */
export const STREAM_TIMEOUT_MS = 30_000;

type UnaryFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;
type BidiFn = (opts: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, unknown>;

export function unary<T>(client: grpc.Client, method: string, request: unknown, timeoutMs = SERVER_CALL_TIMEOUT_MS, signal?: AbortSignal): Promise<T> {
  const fn = (client as unknown as Record<string, UnaryFn | undefined>)[method];
  if (typeof fn !== 'function') return Promise.reject(new ServerAuthorityError('rpc_missing', `server-authority: ${method} is not a method of this client; is proto/ installed with the agent?`));
  return new Promise<T>((resolve, reject) => {
    const call = fn.call(client, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(res as T);
    });
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface BidiTimeouts {
  /** Times the wait for each answer. */
  readonly clock: Clock;
  /** Deadline of the whole stream. */
  readonly totalMs?: number;
  /** How long next() waits for the server's next message before the stream is given up. */
  readonly answerMs?: number;
}

/** A bidi stream read one message at a time; errors and end surface from next(). */
export class BidiReader<Req, Res> {
  private readonly queue: Res[] = [];
  private waiting: { resolve: (v: Res) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private cancelAnswerTimer: (() => void) | undefined;
  private readonly answerMs: number;
  private readonly clock: Clock;
  readonly call: grpc.ClientDuplexStream<Req, Res>;

  constructor(client: grpc.Client, method: string, timeouts: BidiTimeouts) {
    const fn = (client as unknown as Record<string, BidiFn | undefined>)[method];
    if (typeof fn !== 'function') throw new ServerAuthorityError('rpc_missing', `server-authority: ${method} is not a method of this client; is proto/ installed with the agent?`);
    this.answerMs = timeouts.answerMs ?? SERVER_CALL_TIMEOUT_MS;
    this.clock = timeouts.clock;
    this.call = fn.call(client, { deadline: Date.now() + (timeouts.totalMs ?? STREAM_TIMEOUT_MS) }) as grpc.ClientDuplexStream<Req, Res>;
    this.call.on('data', (m: Res) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        this.clearAnswerTimer();
        w.resolve(m);
      } else this.queue.push(m);
    });
    this.call.on('error', (e: Error) => this.fail(e));
    this.call.on('end', () => this.fail(new ServerAuthorityError('stream_ended', 'server-authority: the server ended the stream before the sync finished')));
  }

  send(m: Req): void {
    this.call.write(m);
  }

  next(): Promise<Res> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Res>((resolve, reject) => {
      this.waiting = { resolve, reject };
      // The stream's own deadline is for all of its pages; a server that stopped answering is
      // given up on as soon as one answer is late, like a unary call.
      this.cancelAnswerTimer = this.clock.setTimer(this.answerMs, () => {
        this.cancelAnswerTimer = undefined;
        this.fail(new ServerAuthorityError('server_timeout', `server-authority: the SPIRE server did not answer within ${this.answerMs} ms; it is treated as unreachable until it answers again`));
        this.call.cancel();
      });
    });
  }

  /** Half-close and stop listening; the deadline ends the call if the server lingers. */
  close(): void {
    this.clearAnswerTimer();
    this.call.end();
    this.call.cancel();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.clearAnswerTimer();
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(this.failure);
  }

  private clearAnswerTimer(): void {
    this.cancelAnswerTimer?.();
    this.cancelAnswerTimer = undefined;
  }
}
