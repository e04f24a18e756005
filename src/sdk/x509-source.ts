/**
 * A live X.509 view of the Workload API, as go-spiffe's X509Source: `create`
 * resolves after the first update and every getter throws once the source is closed.
 */
import { SpiffeAgentError } from '../errors.js';
import type { TrustDomain, X509Bundle, X509SVID } from '../svid/index.js';
import { WorkloadAPIClient, type ClientOptions } from './client.js';
import type { X509Context } from './convert.js';
import { SourceClosedError } from './errors.js';
import { WaitReport, awaitFirstUpdate, waitForFirst } from './first-update.js';

export interface X509SourceOptions extends ClientOptions {
  /** Use this client instead of dialing one; the source then does not close it. */
  readonly client?: WorkloadAPIClient | undefined;
  /** Chooses the SVID getX509SVID() returns; default: the first (the agent's default identity). */
  readonly picker?: ((svids: readonly X509SVID[]) => X509SVID) | undefined;
  /** Aborting gives up waiting for the first update (create rejects) and closes the source. */
  readonly signal?: AbortSignal | undefined;
  /** create() gives up after this long without a first update; default: wait (for an agent not up yet) until `signal` aborts. */
  readonly timeoutMs?: number | undefined;
}

export class X509Source {
  readonly #client: WorkloadAPIClient;
  readonly #ownsClient: boolean;
  readonly #picker: ((svids: readonly X509SVID[]) => X509SVID) | undefined;
  readonly #stop = new AbortController();
  readonly #listeners = new Set<(ctx: X509Context) => void>();
  #context: X509Context | undefined;
  #watch: Promise<void> = Promise.resolve();

  private constructor(opts: X509SourceOptions) {
    this.#ownsClient = opts.client === undefined;
    this.#client = opts.client ?? new WorkloadAPIClient(opts);
    this.#picker = opts.picker;
  }

  static async create(opts: X509SourceOptions = {}): Promise<X509Source> {
    const source = new X509Source(opts);
    const signal = opts.signal ? AbortSignal.any([opts.signal, source.#stop.signal]) : source.#stop.signal;
    const address = source.#client.address.target;
    const report = new WaitReport({ address, logger: opts.logger });
    const first = waitForFirst<X509Context>();
    source.#watch = source.#client.watchX509Context(
      {
        onUpdate: (ctx) => {
          source.#context = ctx;
          first.resolve(ctx);
          for (const l of source.#listeners) l(ctx);
        },
        onError: (err) => report.failed(err),
      },
      signal,
    );
    await awaitFirstUpdate(first, source.#watch, () => new SourceClosedError('X.509'), () => source.close(), { report, timeoutMs: opts.timeoutMs, address });
    return source;
  }

  #current(): X509Context {
    if (this.#stop.signal.aborted || !this.#context) throw new SourceClosedError('X.509');
    return this.#context;
  }

  /** The default SVID (or the picker's choice) from the latest update. */
  getX509SVID(): X509SVID {
    const { svids } = this.#current();
    const svid = this.#picker ? this.#picker(svids) : svids[0];
    if (!svid) throw new SpiffeAgentError('workloadapi_no_svid', 'workloadapi: no X.509-SVID available; check the workload has a registration entry');
    return svid;
  }

  getX509SVIDs(): readonly X509SVID[] {
    return this.#current().svids;
  }

  getX509Context(): X509Context {
    return this.#current();
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    const bundle = this.#current().bundles.bundleFor(td);
    if (!bundle) {
      throw new SpiffeAgentError('workloadapi_no_bundle', `x509bundle: no X.509 bundle for trust domain "${td.toString()}"`);
    }
    return bundle;
  }

  /** Called on every update after this one; returns an unsubscribe function. */
  onUpdate(listener: (ctx: X509Context) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    this.#listeners.clear();
    await this.#watch.catch(() => {});
    if (this.#ownsClient) this.#client.close();
  }
}
