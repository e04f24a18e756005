/**
 * JWT counterpart of X509Source (go-spiffe's JWTSource): keeps JWT bundles current
 * through a watch, and fetches JWT-SVIDs on demand, since they are minted per audience.
 */
import { SpiffeAgentError } from '../errors.js';
import type { BundleSet, JWTBundle, JWTSVID, TrustDomain } from '../svid/index.js';
import { WorkloadAPIClient, type CallOptions, type ClientOptions } from './client.js';
import { SourceClosedError } from './errors.js';
import { WaitReport, awaitFirstUpdate, waitForFirst } from './first-update.js';

export interface JWTSourceOptions extends ClientOptions {
  readonly client?: WorkloadAPIClient | undefined;
  readonly signal?: AbortSignal | undefined;
  /** create() gives up after this long without a first update; default: wait (for an agent not up yet) until `signal` aborts. */
  readonly timeoutMs?: number | undefined;
}

export class JWTSource {
  readonly #client: WorkloadAPIClient;
  readonly #ownsClient: boolean;
  readonly #stop = new AbortController();
  #bundles: BundleSet<JWTBundle> | undefined;
  #watch: Promise<void> = Promise.resolve();

  private constructor(opts: JWTSourceOptions) {
    this.#ownsClient = opts.client === undefined;
    this.#client = opts.client ?? new WorkloadAPIClient(opts);
  }

  static async create(opts: JWTSourceOptions = {}): Promise<JWTSource> {
    const source = new JWTSource(opts);
    const signal = opts.signal ? AbortSignal.any([opts.signal, source.#stop.signal]) : source.#stop.signal;
    const address = source.#client.address.target;
    const report = new WaitReport({ address, logger: opts.logger });
    const first = waitForFirst<BundleSet<JWTBundle>>();
    source.#watch = source.#client.watchJWTBundles(
      {
        onUpdate: (set) => {
          source.#bundles = set;
          first.resolve(set);
        },
        onError: (err) => report.failed(err),
      },
      signal,
    );
    await awaitFirstUpdate(first, source.#watch, () => new SourceClosedError('JWT'), () => source.close(), { report, timeoutMs: opts.timeoutMs, address });
    return source;
  }

  #check(): void {
    if (this.#stop.signal.aborted) throw new SourceClosedError('JWT');
  }

  /** A fresh JWT-SVID for `audience` (the first one the agent returns). */
  async fetchJWTSVID(params: { audience: readonly string[]; subject?: string | undefined }, opts: CallOptions = {}): Promise<JWTSVID> {
    this.#check();
    return this.#client.fetchJWTSVID(params, opts);
  }

  async fetchJWTSVIDs(params: { audience: readonly string[]; subject?: string | undefined }, opts: CallOptions = {}): Promise<JWTSVID[]> {
    this.#check();
    return this.#client.fetchJWTSVIDs(params, opts);
  }

  getBundles(): BundleSet<JWTBundle> {
    this.#check();
    if (!this.#bundles) throw new SourceClosedError('JWT');
    return this.#bundles;
  }

  getJWTBundleForTrustDomain(td: TrustDomain): JWTBundle {
    const bundle = this.getBundles().bundleFor(td);
    if (!bundle) throw new SpiffeAgentError('workloadapi_no_bundle', `jwtbundle: no JWT bundle for trust domain "${td.toString()}"`);
    return bundle;
  }

  async close(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    await this.#watch.catch(() => {});
    if (this.#ownsClient) this.#client.close();
  }
}
