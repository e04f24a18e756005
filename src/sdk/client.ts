/**
 * Workload API client in the shape of go-spiffe's workloadapi.Client. Each method
 * has a raw twin (`fetchRaw*`) returning the decoded proto message, which the CLI
 * needs for `-output json`; the parsed methods go through ./convert.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { resolveAddress, type WorkloadAddress } from './address.js';
import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import { WorkloadAPIError } from './errors.js';
import { nullLogger, type SdkLogger } from './logger.js';
import {
  workloadServiceClientConstructor,
  type RawJWTBundlesResponse,
  type RawJWTSVIDResponse,
  type RawValidateJWTSVIDResponse,
  type RawX509BundlesResponse,
  type RawX509SVIDResponse,
} from './proto.js';
import {
  toJWTBundles,
  toJWTSVIDs,
  toValidatedClaims,
  toX509Bundles,
  toX509Context,
  type ValidatedJWT,
  type X509Context,
} from './convert.js';
import type { BundleSet, JWTBundle, JWTSVID, X509Bundle } from '../svid/index.js';

export const SECURITY_HEADER = 'workload.spiffe.io';

export interface ClientOptions {
  /** `unix:///path`, `tcp://IP:port` or an absolute socket path; else SPIFFE_ENDPOINT_SOCKET from `env`. */
  readonly address?: string | undefined;
  /** Where SPIFFE_ENDPOINT_SOCKET is looked up; pass `process.env` explicitly. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  readonly logger?: SdkLogger | undefined;
  readonly backoff?: BackoffOptions | undefined;
  /** Overrides where proto/ is found (tests, bundlers). */
  readonly protoDir?: string | undefined;
  readonly channelOptions?: grpc.ChannelOptions | undefined;
}

export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
  /** Deadline for the call (for streams: until the first message). */
  readonly timeoutMs?: number | undefined;
}

export interface Watcher<T> {
  onUpdate(value: T): void | Promise<void>;
  onError?(err: Error): void;
}

type Stub = grpc.Client & Record<string, unknown>;

type StreamMethod = 'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTBundles';

/** Canceled and InvalidArgument end a watch (go-spiffe): the caller asked, or no retry can help. */
function isFatal(status: number): boolean {
  return status === grpc.status.CANCELLED || status === grpc.status.INVALID_ARGUMENT;
}

function toAPIError(err: unknown): WorkloadAPIError {
  if (err instanceof WorkloadAPIError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code === 'number') return new WorkloadAPIError(e.code, e.details ?? e.message ?? '', { cause: err });
  return new WorkloadAPIError(grpc.status.UNKNOWN, err instanceof Error ? err.message : String(err), { cause: err });
}

export class WorkloadAPIClient {
  readonly address: WorkloadAddress;
  readonly #stub: Stub;
  readonly #log: SdkLogger;
  readonly #backoff: BackoffOptions;
  readonly #closed = new AbortController();

  constructor(opts: ClientOptions = {}) {
    this.address = resolveAddress({ address: opts.address, env: opts.env });
    this.#log = opts.logger ?? nullLogger;
    this.#backoff = opts.backoff ?? {};
    const Ctor = workloadServiceClientConstructor(opts.protoDir);
    this.#stub = new Ctor(this.address.target, grpc.credentials.createInsecure(), {
      ...opts.channelOptions,
    }) as unknown as Stub;
  }

  #metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set(SECURITY_HEADER, 'true');
    return md;
  }

  #callOptions(opts: CallOptions): grpc.CallOptions {
    return opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? { deadline: new Date(Date.now() + opts.timeoutMs) } : {};
  }

  #unary<Req, Res>(method: string, req: Req, opts: CallOptions): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (this.#closed.signal.aborted) return reject(new WorkloadAPIError(grpc.status.CANCELLED, 'client is closed'));
      const fn = this.#stub[method] as unknown as (
        r: Req,
        md: grpc.Metadata,
        o: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res?: Res) => void,
      ) => grpc.ClientUnaryCall;
      const onAbort = (): void => call.cancel();
      const call = fn.call(this.#stub, req, this.#metadata(), this.#callOptions(opts), (err, res) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(toAPIError(err));
        else resolve(res as Res);
      });
      if (opts.signal?.aborted) call.cancel();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #openStream(method: StreamMethod, opts: grpc.CallOptions): grpc.ClientReadableStream<unknown> {
    const fn = this.#stub[method] as unknown as (r: object, md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;
    return fn.call(this.#stub, {}, this.#metadata(), opts);
  }

  /** Opens a stream, resolves with its first message and cancels it. */
  #first<Res>(method: StreamMethod, opts: CallOptions): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (this.#closed.signal.aborted) return reject(new WorkloadAPIError(grpc.status.CANCELLED, 'client is closed'));
      const call = this.#openStream(method, this.#callOptions(opts));
      let settled = false;
      const onAbort = (): void => call.cancel();
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
        call.cancel();
      };
      call.on('data', (msg: Res) => settle(() => resolve(msg)));
      call.on('error', (err) => settle(() => reject(toAPIError(err))));
      call.on('end', () => settle(() => reject(new WorkloadAPIError(grpc.status.UNAVAILABLE, 'stream ended before the first message'))));
      if (opts.signal?.aborted) call.cancel();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Keeps a stream open, reconnecting with backoff, until `signal` aborts or the
   * client closes (resolves) or the server says Canceled/InvalidArgument (rejects).
   */
  async #watch<Res>(method: StreamMethod, onMessage: (msg: Res) => Promise<void>, onError: (err: Error) => void, signal?: AbortSignal): Promise<void> {
    const stop = signal ? AbortSignal.any([signal, this.#closed.signal]) : this.#closed.signal;
    const backoff = new Backoff(this.#backoff);
    while (!stop.aborted) {
      const err = await new Promise<WorkloadAPIError>((resolve) => {
        const call = this.#openStream(method, {});
        const onAbort = (): void => call.cancel();
        stop.addEventListener('abort', onAbort, { once: true });
        let chain = Promise.resolve();
        let done = false;
        const finish = (e: WorkloadAPIError): void => {
          if (done) return;
          done = true;
          stop.removeEventListener('abort', onAbort);
          call.cancel();
          void chain.then(() => resolve(e));
        };
        call.on('data', (msg: Res) => {
          // Messages are handled in order; a handler error is reported, the stream goes on.
          chain = chain.then(async () => {
            try {
              await onMessage(msg);
              backoff.reset();
            } catch (e) {
              onError(e as Error);
            }
          });
        });
        call.on('error', (e) => finish(toAPIError(e)));
        call.on('end', () => finish(new WorkloadAPIError(grpc.status.UNAVAILABLE, 'stream closed by the server')));
      });
      if (stop.aborted) return;
      if (isFatal(err.status)) {
        this.#log.error({ method, error: err.message }, 'workloadapi: watch stopped');
        onError(err);
        throw err;
      }
      const delay = backoff.next();
      this.#log.debug({ method, error: err.message, retryMs: delay }, 'workloadapi: watch failed; retrying');
      onError(err);
      await sleep(delay, stop);
    }
  }

  // ---- raw messages -------------------------------------------------------

  fetchRawX509SVID(opts: CallOptions = {}): Promise<RawX509SVIDResponse> {
    return this.#first('FetchX509SVID', opts);
  }

  fetchRawX509Bundles(opts: CallOptions = {}): Promise<RawX509BundlesResponse> {
    return this.#first('FetchX509Bundles', opts);
  }

  fetchRawJWTBundles(opts: CallOptions = {}): Promise<RawJWTBundlesResponse> {
    return this.#first('FetchJWTBundles', opts);
  }

  fetchRawJWTSVID(params: { audience: readonly string[]; subject?: string | undefined }, opts: CallOptions = {}): Promise<RawJWTSVIDResponse> {
    return this.#unary('FetchJWTSVID', { audience: [...params.audience], spiffe_id: params.subject ?? '' }, opts);
  }

  validateRawJWTSVID(token: string, audience: string, opts: CallOptions = {}): Promise<RawValidateJWTSVIDResponse> {
    return this.#unary('ValidateJWTSVID', { svid: token, audience }, opts);
  }

  // ---- parsed values ------------------------------------------------------

  async fetchX509Context(opts: CallOptions = {}): Promise<X509Context> {
    return toX509Context(await this.fetchRawX509SVID(opts));
  }

  /** Delivers every X.509 context until `signal` aborts or the client closes. */
  watchX509Context(watcher: Watcher<X509Context>, signal?: AbortSignal): Promise<void> {
    return this.#watch<RawX509SVIDResponse>(
      'FetchX509SVID',
      async (msg) => watcher.onUpdate(await toX509Context(msg)),
      (err) => watcher.onError?.(err),
      signal,
    );
  }

  async fetchX509Bundles(opts: CallOptions = {}): Promise<BundleSet<X509Bundle>> {
    return toX509Bundles(await this.fetchRawX509Bundles(opts));
  }

  watchX509Bundles(watcher: Watcher<BundleSet<X509Bundle>>, signal?: AbortSignal): Promise<void> {
    return this.#watch<RawX509BundlesResponse>(
      'FetchX509Bundles',
      async (msg) => watcher.onUpdate(await toX509Bundles(msg)),
      (err) => watcher.onError?.(err),
      signal,
    );
  }

  async fetchJWTSVID(params: { audience: readonly string[]; subject?: string | undefined }, opts: CallOptions = {}): Promise<JWTSVID> {
    const svids = await this.fetchJWTSVIDs(params, opts);
    return svids[0]!;
  }

  async fetchJWTSVIDs(params: { audience: readonly string[]; subject?: string | undefined }, opts: CallOptions = {}): Promise<JWTSVID[]> {
    return toJWTSVIDs(await this.fetchRawJWTSVID(params, opts), params.audience);
  }

  async fetchJWTBundles(opts: CallOptions = {}): Promise<BundleSet<JWTBundle>> {
    return toJWTBundles(await this.fetchRawJWTBundles(opts));
  }

  watchJWTBundles(watcher: Watcher<BundleSet<JWTBundle>>, signal?: AbortSignal): Promise<void> {
    return this.#watch<RawJWTBundlesResponse>(
      'FetchJWTBundles',
      async (msg) => watcher.onUpdate(await toJWTBundles(msg)),
      (err) => watcher.onError?.(err),
      signal,
    );
  }

  /** Asks the agent to validate `token` for `audience`; InvalidArgument means the token is not valid. */
  async validateJWTSVID(token: string, audience: string, opts: CallOptions = {}): Promise<ValidatedJWT> {
    return toValidatedClaims(await this.validateRawJWTSVID(token, audience, opts));
  }

  /** Stops every watch and closes the channel. */
  close(): void {
    this.#closed.abort();
    this.#stub.close();
  }
}
