import type { Clock } from '../../clock.js';
import type { EmbeddedAuthorityConfig } from '../../config/types.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import type {
  Authority,
  AuthoritySnapshot,
  AuthorityStatus,
  RegistrationEntry,
  SignedJWTSVID,
  SignedX509SVID,
  TrustBundle,
} from '../types.js';
import { CARotator } from './ca-rotator.js';
import { EntriesSource } from './entries-source.js';
import { EmbeddedAuthorityError } from './errors.js';
import { FederatedBundles } from './federated-bundles.js';
import { issueJWTSVID } from './jwt-issuer.js';
import { issueX509SVID } from './x509-issuer.js';

export interface EmbeddedAuthorityOptions {
  trustDomain: string;
  dataDir: string;
  config: EmbeddedAuthorityConfig;
  clock: Clock;
  log: Logger;
}

/**
 * The authority used when agent.conf has no server_address: a local CA and JWT key
 * (persisted under <data_dir>/embedded-ca, rotated on the Clock), registration entries
 * from a file, and federated bundles from files.
 */
export class EmbeddedAuthority implements Authority {
  private readonly rotator: CARotator;
  private readonly entries: EntriesSource;
  private readonly federated: FederatedBundles;
  private readonly listeners = new Set<(snap: AuthoritySnapshot) => void>();
  private readonly log: Logger;
  private snap: AuthoritySnapshot | undefined;
  private sequence = 0;
  private bundleKey = '';
  private started = false;
  private closed = false;

  constructor(private readonly o: EmbeddedAuthorityOptions) {
    // The caller binds the subsystem name (the agent does) so it is not repeated here.
    this.log = o.log;
    const changed = (): void => this.refresh();
    this.rotator = new CARotator({
      trustDomain: o.trustDomain,
      dataDir: o.dataDir,
      caKeyType: o.config.caKeyType,
      jwtKeyType: o.config.jwtKeyType,
      caTtlMs: o.config.caTtlMs,
      subject: o.config.caSubject,
      clock: o.clock,
      log: this.log,
      onChange: changed,
    });
    this.entries = new EntriesSource({ file: o.config.entriesFile, trustDomain: o.trustDomain, clock: o.clock, log: this.log, onChange: changed });
    this.federated = new FederatedBundles({ files: o.config.federatedBundles, ownTrustDomain: o.trustDomain, clock: o.clock, log: this.log, onChange: changed });
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.closed) throw new EmbeddedAuthorityError('closed', 'embedded-authority: closed');
    signal.throwIfAborted();
    try {
      await this.rotator.start();
      signal.throwIfAborted();
      await this.entries.start();
      await this.federated.start();
      signal.throwIfAborted();
    } catch (err) {
      await this.close();
      throw err;
    }
    this.started = true;
    this.refresh();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.rotator.close();
    this.entries.close();
    this.federated.close();
    await this.rotator.idle();
    this.listeners.clear();
  }

  snapshot(): AuthoritySnapshot {
    if (!this.snap) throw new EmbeddedAuthorityError('not_started', 'embedded-authority: not started; await start() first');
    return this.snap;
  }

  /** No server and no agent SVID: ready once the CA and entries are loaded, until closed. */
  status(): AuthorityStatus {
    return { mode: 'embedded', ready: this.started && !this.closed, agentSVID: undefined, lastSyncSuccess: 0, serverReachable: undefined };
  }

  onChange(listener: (snap: AuthoritySnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Re-read the entries file and federated bundles (the agent calls this on SIGHUP).
   * Rejects when a file is unusable; the previous content stays in effect either way.
   */
  async reload(): Promise<void> {
    const [entries, bundleErrors] = await Promise.all([this.entries.reload({ quiet: true }), this.federated.refresh()]);
    if (entries.error) throw entries.error;
    if (bundleErrors[0]) throw bundleErrors[0];
  }

  /** Settles after in-flight rotations (tests use it after advancing a fake clock). */
  idle(): Promise<void> {
    return this.rotator.idle();
  }

  async signX509SVID(entry: RegistrationEntry, csrDer: Uint8Array): Promise<SignedX509SVID> {
    const ca = await this.rotator.current();
    const svid = await issueX509SVID({ ca, entry, csrDer, now: this.o.clock.now(), defaultTtlMs: this.o.config.defaultX509SvidTtlMs });
    this.log.debug({ [F.spiffeId]: entry.spiffeId, [F.entryId]: entry.id, [F.serial]: svid.serial, [F.expiresAt]: new Date(svid.notAfter).toISOString() }, 'Signed X509-SVID');
    return svid;
  }

  async signJWTSVID(entry: RegistrationEntry, audience: readonly string[]): Promise<SignedJWTSVID> {
    const ca = await this.rotator.current();
    const svid = await issueJWTSVID({
      key: ca.jwt,
      entry,
      audience,
      now: this.o.clock.now(),
      defaultTtlMs: this.o.config.defaultJwtSvidTtlMs,
      notAfter: ca.notAfter,
      notBefore: ca.notBefore,
      issuer: this.o.config.jwtIssuer,
    });
    this.log.debug({ [F.spiffeId]: entry.spiffeId, [F.entryId]: entry.id, [F.audience]: [...audience], [F.expiresAt]: new Date(svid.expiresAt).toISOString() }, 'Signed JWT-SVID');
    return svid;
  }

  private refresh(): void {
    if (!this.started || this.closed) return;
    const bundle = this.buildBundle();
    this.snap = Object.freeze({ bundle, federatedBundles: this.federated.get(), entries: this.entries.entries() });
    for (const l of [...this.listeners]) {
      try {
        l(this.snap);
      } catch (err) {
        this.log.error({ [F.error]: String(err) }, 'Authority change listener failed');
      }
    }
  }

  private buildBundle(): TrustBundle {
    const gens = this.rotator.published();
    const key = gens.map((g) => g.id).join(',');
    // The sequence number moves only when the set of authorities does.
    if (key !== this.bundleKey) {
      this.bundleKey = key;
      this.sequence++;
    }
    return Object.freeze({
      trustDomain: this.o.trustDomain,
      x509Authorities: gens.map((g) => g.certDer),
      jwtAuthorities: gens.map((g) => ({ keyId: g.jwt.kid, publicKey: g.jwt.publicJwk, expiresAt: Math.floor(g.notAfter / 1000) })),
      sequenceNumber: this.sequence,
      refreshHintSeconds: 0,
    });
  }
}
