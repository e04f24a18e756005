/**
 * Where the agent's first trust in its server comes from, as spire-agent v1.13.3 defines it
 * (pkg/agent/trustbundlesources): trust_bundle_path, trust_bundle_url (https with system
 * roots, or plain http over trust_bundle_unix_socket with the spire-* query parameters),
 * or insecure_bootstrap. The bootstrap state (use, start time, attempts) lives in
 * agent-data.json so a rebootstrap survives restarts, exactly where spire-agent keeps it.
 */
import { INPUT_LIMITS, readBoundedFile } from '../../storage/bounded-file.js';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Clock } from '../../clock.js';
import { pemDecode } from '../../svid/der.js';
import { TrustDomain } from '../../svid/spiffe-id.js';
import type { Logger } from '../../telemetry/logger.js';
import type { AgentStorage } from './agent-storage.js';
import { SessionError } from './session-errors.js';

/** spire-agent's trustbundlesources constants, stored as numbers in agent-data.json. */
export const USE_UNSPECIFIED = 0;
export const USE_BOOTSTRAP = 1;
export const USE_REBOOTSTRAP = 2;

const MAX_DOWNLOAD_BYTES = 4 * 1024 * 1024;

/** The agent {} keys bootstrap reads (server mode's settings plus trust_domain). */
export interface BootstrapOptions {
  readonly trustDomain: string;
  readonly trustBundlePath: string | undefined;
  readonly trustBundleUrl: string | undefined;
  readonly trustBundleUnixSocket: string | undefined;
  readonly trustBundleFormat: 'pem' | 'spiffe';
  /** trust_bundle_spiffe_workload_api: a Workload API address the bundle is fetched from. */
  readonly trustBundleSpiffeWorkloadApi?: string | undefined;
  readonly insecureBootstrap: boolean;
  readonly serverAddress: string | undefined;
  readonly serverPort: number;
}

export interface BootstrapBundle {
  /** DER X.509 authorities; empty when insecure. */
  readonly certs: readonly Uint8Array[];
  readonly insecure: boolean;
}

export interface BootstrapDeps {
  readonly options: BootstrapOptions;
  readonly storage: AgentStorage;
  readonly clock: Clock;
  readonly log: Logger;
  /** Seam for tests: fetches a URL (over `unixSocket` when given) and returns its body. */
  readonly download?: (url: string, unixSocket: string | undefined) => Promise<Uint8Array>;
  /** Fetches the X.509 authorities of a trust domain from a Workload API (the agent supplies the client). */
  readonly workloadApiBundle?: ((address: string, trustDomain: string) => Promise<Uint8Array[]>) | undefined;
}

/** The bootstrap trust source and its persisted state (spire-agent's trustbundlesources.Bundle). */
export class BootstrapTrust {
  private use = USE_UNSPECIFIED;
  private startTime = 0;
  private attempts = 0;
  /** The last bundle fetched from the bootstrap source; stored on success as spire-agent does. */
  private last: readonly Uint8Array[] = [];

  constructor(private readonly d: BootstrapDeps) {}

  /** Loads the persisted state; an unspecified use becomes rebootstrap when a bundle is cached. */
  init(): void {
    const s = this.d.storage.bootstrapState();
    this.use = s.use;
    this.startTime = s.startTime;
    this.attempts = s.connectionAttempts;
    if (this.use === USE_UNSPECIFIED) this.use = this.d.storage.bundle().length > 0 ? USE_REBOOTSTRAP : USE_BOOTSTRAP;
  }

  get isBootstrap(): boolean {
    return this.use !== USE_REBOOTSTRAP;
  }

  /** Epoch ms when the current (re)bootstrap attempt started; starts the clock if it was not running. */
  async startedAt(): Promise<number> {
    if (this.startTime === 0) {
      this.startTime = this.d.clock.now();
      await this.persist();
    }
    return this.startTime;
  }

  /**
   * Milliseconds since the current (re)bootstrap attempt started, starting it now if none runs.
   * `now` is read after the start is settled (and persisted): read before, a slow write made the
   * elapsed time negative, so rebootstrap_delay = 0 still said "ignoring for now".
   */
  async sinceStartMs(): Promise<number> {
    const started = await this.startedAt();
    return this.d.clock.now() - started;
  }

  /** Fetches the bootstrap bundle from the configured source, counting the attempt. */
  async fetch(): Promise<BootstrapBundle> {
    const o = this.d.options;
    this.attempts++;
    if (this.startTime === 0) this.startTime = this.d.clock.now();
    await this.persist();
    let bytes: Uint8Array;
    let from: string;
    if (o.trustBundleSpiffeWorkloadApi !== undefined) {
      return { certs: await this.fromWorkloadApi(o.trustBundleSpiffeWorkloadApi), insecure: false };
    } else if (o.trustBundleUrl !== undefined) {
      const url = this.bundleUrl();
      from = `trust_bundle_url ${o.trustBundleUrl}`;
      this.d.log.info(
        { url: o.trustBundleUrl, attempt: this.attempts, unix_socket: o.trustBundleUnixSocket },
        `Server ${this.use === USE_REBOOTSTRAP ? 'reattestation' : 'attestation'} attempt ${this.attempts}`,
      );
      try {
        bytes = await (this.d.download ?? download)(url, o.trustBundleUnixSocket);
      } catch (err) {
        throw new SessionError('bootstrap_bundle', `bootstrap: unable to fetch trust bundle from ${from}: ${(err as Error).message}; check the URL and that the server behind it answers 200`, { cause: err });
      }
    } else if (o.trustBundlePath !== undefined) {
      from = `trust_bundle_path ${o.trustBundlePath}`;
      try {
        bytes = Buffer.from(await readBoundedFile(o.trustBundlePath, { maxBytes: INPUT_LIMITS.bundle, what: 'trust_bundle_path' }), 'utf8');
      } catch (err) {
        throw new SessionError('bootstrap_bundle', `bootstrap: could not read ${from}: ${(err as Error).message}`, { cause: err });
      }
    } else if (o.insecureBootstrap) {
      return { certs: [], insecure: true };
    } else {
      throw new SessionError('bootstrap_bundle', 'bootstrap: no trust bundle source; set trust_bundle_path, trust_bundle_url, trust_bundle_spiffe_workload_api or insecure_bootstrap in the agent block');
    }
    const certs = await parseTrustBundle(bytes, o.trustBundleFormat, o.trustDomain, from);
    this.last = certs;
    return { certs, insecure: false };
  }

  private async fromWorkloadApi(address: string): Promise<Uint8Array[]> {
    const fetch = this.d.workloadApiBundle;
    if (!fetch) throw new SessionError('bootstrap_bundle', 'bootstrap: trust_bundle_spiffe_workload_api is set but this agent was built without a Workload API client');
    this.d.log.info({ address, attempt: this.attempts }, `Server ${this.use === USE_REBOOTSTRAP ? 'reattestation' : 'attestation'} attempt ${this.attempts}`);
    let certs: Uint8Array[];
    try {
      certs = await fetch(address, this.d.options.trustDomain);
    } catch (err) {
      throw new SessionError('bootstrap_bundle', `bootstrap: ${(err as Error).message}; check trust_bundle_spiffe_workload_api and that the agent behind it serves this trust domain`, { cause: err });
    }
    this.last = certs;
    return certs;
  }

  /** After a successful attestation from the bootstrap source: state reset, bundle stored. */
  async succeeded(): Promise<void> {
    this.use = USE_REBOOTSTRAP;
    this.attempts = 0;
    this.startTime = 0;
    await this.persist();
    if (this.last.length > 0) await this.d.storage.storeBundle(this.last);
  }

  /** Only if a (re)bootstrap clock is running, as spire-agent's SetSuccessIfRunning. */
  async succeededIfRunning(): Promise<void> {
    if (this.startTime !== 0) await this.succeeded();
  }

  /** Marks the next start to fetch the bootstrap bundle again and attest anew. */
  async forceRebootstrap(): Promise<void> {
    this.use = USE_REBOOTSTRAP;
    this.startTime = this.d.clock.now();
    this.attempts = 0;
    await this.persist();
    await this.d.storage.deleteSVID();
    await this.d.storage.storeBundle([]);
  }

  private async persist(): Promise<void> {
    await this.d.storage.storeBootstrapState({ use: this.use, startTime: this.startTime, connectionAttempts: this.attempts });
  }

  private bundleUrl(): string {
    const o = this.d.options;
    const u = new URL(o.trustBundleUrl as string);
    if (o.trustBundleUnixSocket !== undefined) {
      u.searchParams.set('spire-attest-mode', this.use === USE_REBOOTSTRAP ? 'rebootstrap' : 'bootstrap');
      u.searchParams.set('spire-connection-attempts', String(this.attempts));
      u.searchParams.set('spire-attest-start-time', rfc3339Seconds(this.startTime));
      u.searchParams.set('spire-server-address', o.serverAddress ?? '');
      u.searchParams.set('spire-server-port', String(o.serverPort));
      u.searchParams.set('spiffe-trust-domain', o.trustDomain);
    }
    return u.toString();
  }
}

/** PEM (any number of CERTIFICATE blocks) or a SPIFFE bundle document → DER authorities. */
export async function parseTrustBundle(bytes: Uint8Array, format: 'pem' | 'spiffe', trustDomain: string, from: string): Promise<Uint8Array[]> {
  // The SPIFFE bundle parser brings an ASN.1 library: loaded only for that format, off the PEM start path.
  const SpiffeBundle = format === 'spiffe' ? (await import('../../svid/spiffe-bundle.js')).SpiffeBundle : undefined;
  let certs: Uint8Array[];
  try {
    certs = SpiffeBundle ? [...SpiffeBundle.parse(TrustDomain.parse(trustDomain), bytes).x509Bundle().authorities()] : pemDecode(bytes, 'CERTIFICATE');
  } catch (err) {
    throw new SessionError('bootstrap_bundle', `bootstrap: ${from} is not a valid ${format === 'spiffe' ? 'SPIFFE bundle' : 'PEM bundle'} (trust_bundle_format = "${format}"): ${(err as Error).message}`, { cause: err });
  }
  if (certs.length === 0) {
    throw new SessionError('bootstrap_bundle', `bootstrap: no certificates found in trust bundle ${from}; check trust_bundle_format ("${format}")`);
  }
  return certs;
}

function rfc3339Seconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** GET with system roots for https, or plain http over a Unix socket; 200 only. */
function download(url: string, unixSocket: string | undefined): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const onResponse = (res: http.IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`error downloading trust bundle: ${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_DOWNLOAD_BYTES) {
          res.destroy(new Error(`trust bundle larger than ${MAX_DOWNLOAD_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
      res.on('error', reject);
    };
    const req =
      unixSocket !== undefined
        ? http.get({ socketPath: unixSocket, path: `${u.pathname}${u.search}`, headers: { host: u.host || 'localhost' } }, onResponse)
        : https.get(u, onResponse);
    req.setTimeout(30_000, () => req.destroy(new Error('timed out after 30s')));
    req.on('error', reject);
  });
}
