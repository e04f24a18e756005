/**
 * Promise and stream helpers over proto-loader clients (methods looked up by name, since the
 * clients are generic). Every call carries spire-agent's 30 s budget as a deadline.
 */
import * as grpc from '@grpc/grpc-js';
import { ServerAuthorityError } from './authority-errors.js';

export const RPC_TIMEOUT_MS = 30_000;

type UnaryFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;
type BidiFn = (opts: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, unknown>;

export function unary<T>(client: grpc.Client, method: string, request: unknown, timeoutMs = RPC_TIMEOUT_MS, signal?: AbortSignal): Promise<T> {
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

/** A bidi stream read one message at a time; errors and end surface from next(). */
export class BidiReader<Req, Res> {
  private readonly queue: Res[] = [];
  private waiting: { resolve: (v: Res) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  readonly call: grpc.ClientDuplexStream<Req, Res>;

  constructor(client: grpc.Client, method: string, timeoutMs = RPC_TIMEOUT_MS) {
    const fn = (client as unknown as Record<string, BidiFn | undefined>)[method];
    if (typeof fn !== 'function') throw new ServerAuthorityError('rpc_missing', `server-authority: ${method} is not a method of this client; is proto/ installed with the agent?`);
    this.call = fn.call(client, { deadline: Date.now() + timeoutMs }) as grpc.ClientDuplexStream<Req, Res>;
    this.call.on('data', (m: Res) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w.resolve(m);
      } else this.queue.push(m);
    });
    const fail = (e: Error): void => {
      this.failure ??= e;
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(this.failure);
    };
    this.call.on('error', fail);
    this.call.on('end', () => fail(new ServerAuthorityError('stream_ended', 'server-authority: the server ended the stream before the sync finished')));
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
    });
  }

  /** Half-close and stop listening; the deadline ends the call if the server lingers. */
  close(): void {
    this.call.end();
    this.call.cancel();
  }
}
