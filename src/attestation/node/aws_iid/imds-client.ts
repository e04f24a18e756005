/**
 * A client for the EC2 instance metadata service (IMDS) that asks what spire-agent v1.13.3's
 * aws-sdk-go-v2 imds client (feature/ec2/imds v1.18.4) asks, with its timing:
 *   - IMDSv2: `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: 300` (the SDK's
 *     5-minute default); the answer must carry the same header with the granted TTL. Data GETs
 *     then send `X-aws-ec2-metadata-token`.
 *   - Fallback to IMDSv1 (no token): when the token PUT answers 403, 404 or 405, or cannot be sent
 *     (refused, timed out), the client stops asking for tokens; any other token failure (500,
 *     401, no TTL header) sends that one request without a token. 400 is an error. With
 *     AWS_EC2_METADATA_V1_DISABLED=true every token failure is an error.
 *   - A data GET answered 401 drops the token and retries, re-enabling token requests.
 *   - Each operation (the token PUT, each GET) is tried at most 3 times, 1 s apart (the standard
 *     retryer capped at 1 s backoff), again on connection errors, timeouts and 500/502/503/504,
 *     all within 5 s from the start of the GET; connecting may take 250 ms, the response
 *     headers 500 ms after the request.
 * The request path replaces the endpoint URL's path, as the SDK sets URL.Path.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export const TOKEN_PATH = '/latest/api/token';
export const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
export const TOKEN_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN_TTL_SECONDS = 300;
const MAX_BODY = 1 << 20;

export interface ImdsTiming {
  readonly dialMs: number;
  readonly headerMs: number;
  readonly operationMs: number;
  readonly attempts: number;
  readonly backoffMs: number;
}
export const SDK_TIMING: ImdsTiming = Object.freeze({ dialMs: 250, headerMs: 500, operationMs: 5000, attempts: 3, backoffMs: 1000 });

/** Why a request got no usable answer. `send`: no HTTP answer (refused, reset, timed out). */
export class ImdsRequestError extends Error {
  constructor(
    readonly kind: 'send' | 'status' | 'token' | 'deadline',
    readonly url: string,
    message: string,
    readonly status?: number,
    readonly timeout = false,
  ) {
    super(message);
  }
}

type Outcome = { status: number; headers: IncomingMessage['headers']; body: Buffer } | { error: ImdsRequestError };

const RETRY_STATUS = new Set([500, 502, 503, 504]);

export class ImdsClient {
  private token: { value: string; expiresAt: number } | undefined;
  /** The SDK's "disabled" flag: no more token requests (IMDSv1) until a GET answers 401. */
  private noTokens = false;
  /** Why the last token request failed, for the error a later 401 becomes. */
  tokenFailure: string | undefined;
  /** Whether the last successful GET carried a session token. */
  usedToken = false;

  constructor(
    private readonly endpoint: string,
    private readonly opts: { v1Disabled: boolean; signal: AbortSignal; timing?: ImdsTiming; now?: () => number },
  ) {}

  private get timing(): ImdsTiming {
    return this.opts.timing ?? SDK_TIMING;
  }
  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  url(path: string): string {
    const u = new URL(this.endpoint);
    u.pathname = path;
    return u.toString();
  }

  /** GET `path` (e.g. /latest/dynamic/instance-identity/document): the body of a 2xx answer. */
  async get(path: string): Promise<Buffer> {
    const deadline = this.now() + this.timing.operationMs;
    const url = this.url(path);
    let last: ImdsRequestError | undefined;
    for (let attempt = 1; attempt <= this.timing.attempts; attempt++) {
      if (attempt > 1) await this.backoff(deadline, url, last);
      const headers: Record<string, string> = {};
      let token: string | undefined;
      try {
        token = this.noTokens && !this.opts.v1Disabled ? undefined : await this.getToken(deadline);
      } catch (err) {
        // Out of time while asking for a new token after a 401: the 401 is what the operator needs to see.
        if (err instanceof ImdsRequestError && err.kind === 'deadline' && last?.status === 401) throw last;
        throw err;
      }
      if (token !== undefined) headers[TOKEN_HEADER] = token;
      const r = await this.send('GET', url, headers, deadline);
      if ('error' in r) {
        last = r.error;
        if (r.error.kind === 'deadline') throw r.error;
        continue;
      }
      if (r.status >= 200 && r.status < 300) {
        this.usedToken = token !== undefined;
        return r.body;
      }
      last = new ImdsRequestError('status', url, `GET ${url} answered HTTP ${r.status}`, r.status);
      if (r.status === 401) {
        // The SDK's answer to 401: forget the token, ask for a new one, try again.
        this.token = undefined;
        this.noTokens = false;
        continue;
      }
      if (!RETRY_STATUS.has(r.status)) throw last;
    }
    throw last!;
  }

  /** A session token, or undefined to send this request without one (IMDSv1). */
  private async getToken(deadline: number): Promise<string | undefined> {
    if (this.token !== undefined && this.now() < this.token.expiresAt) return this.token.value;
    const url = this.url(TOKEN_PATH);
    let failure: ImdsRequestError | undefined;
    let granted: { value: string; ttl: number } | undefined;
    for (let attempt = 1; attempt <= this.timing.attempts && granted === undefined; attempt++) {
      if (attempt > 1) await this.backoff(deadline, url, failure);
      const r = await this.send('PUT', url, { [TOKEN_TTL_HEADER]: String(TOKEN_TTL_SECONDS) }, deadline);
      if ('error' in r) {
        failure = r.error;
        if (r.error.kind === 'deadline') break;
        continue;
      }
      if (r.status >= 200 && r.status < 300) {
        const ttl = Number.parseInt(String(r.headers[TOKEN_TTL_HEADER] ?? ''), 10);
        if (Number.isNaN(ttl)) failure = new ImdsRequestError('token', url, `PUT ${url} answered without a ${TOKEN_TTL_HEADER} header`);
        else granted = { value: r.body.toString('utf8'), ttl };
        break;
      }
      failure = new ImdsRequestError('status', url, `PUT ${url} answered HTTP ${r.status}`, r.status);
      if (!RETRY_STATUS.has(r.status)) break;
    }
    if (granted !== undefined) {
      this.token = { value: granted.value, expiresAt: this.now() + granted.ttl * 1000 };
      this.tokenFailure = undefined;
      return granted.value;
    }
    const f = failure!;
    this.tokenFailure = f.message;
    if (f.kind === 'status' && f.status === 400) throw f;
    if (f.kind === 'send' || f.kind === 'deadline' || (f.kind === 'status' && [403, 404, 405].includes(f.status!))) this.noTokens = true;
    if (this.opts.v1Disabled || f.kind === 'deadline') throw f;
    return undefined;
  }

  private async backoff(deadline: number, url: string, last: ImdsRequestError | undefined): Promise<void> {
    if (this.now() + this.timing.backoffMs > deadline) throw this.deadlineError(url, last);
    // Not unref()ed: during attestation this wait may be all that keeps the process alive.
    await new Promise<void>((resolve) => setTimeout(resolve, this.timing.backoffMs));
    if (this.opts.signal.aborted) throw this.deadlineError(url, last);
  }

  private deadlineError(url: string, last: ImdsRequestError | undefined): ImdsRequestError {
    const why = last ? `; last: ${last.message}` : '';
    return new ImdsRequestError('deadline', url, `no answer from ${url} within ${this.timing.operationMs} ms${why}`, last?.status, true);
  }

  /** One HTTP exchange, with the SDK's connect and response-header timeouts and the operation's deadline. */
  private send(method: string, url: string, headers: Record<string, string>, deadline: number): Promise<Outcome> {
    const { dialMs, headerMs } = this.timing;
    return new Promise<Outcome>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const done = (o: Outcome) => {
        for (const t of timers) clearTimeout(t);
        this.opts.signal.removeEventListener('abort', onAbort);
        resolve(o);
      };
      const fail = (message: string, timeout = false, kind: 'send' | 'deadline' = 'send') => {
        req.destroy();
        done({ error: new ImdsRequestError(kind, url, `${method} ${url}: ${message}`, undefined, timeout) });
      };
      const onAbort = () => fail('cancelled', false, 'deadline');
      const u = new URL(url);
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method, headers: { ...headers, 'user-agent': 'spiffe-agent' }, agent: false });
      this.opts.signal.addEventListener('abort', onAbort, { once: true });
      timers.push(setTimeout(() => fail(`no answer within ${this.timing.operationMs} ms`, true, 'deadline'), Math.max(0, deadline - this.now())));
      req.on('socket', (s) => {
        if (!s.connecting) return;
        const t = setTimeout(() => fail(`connect timed out after ${dialMs} ms`, true), dialMs);
        timers.push(t);
        s.once('connect', () => clearTimeout(t));
      });
      req.on('finish', () => timers.push(setTimeout(() => fail(`no response headers within ${headerMs} ms`, true), headerMs)));
      req.on('error', (err) => fail(err.message));
      req.on('response', (res) => {
        for (const t of timers.splice(1)) clearTimeout(t); // keep only the deadline
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) fail(`answer larger than ${MAX_BODY} bytes`);
          else chunks.push(c);
        });
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (err) => fail(err.message));
      });
      req.end();
    });
  }
}
