/**
 * The Authority in server mode: the entries, bundles and workload SVIDs of a SPIRE server,
 * reached through the ServerSession (which owns trust bootstrap and the agent's own SVID).
 * A sync runs every sync_interval (spire-agent's backoff on failure); between syncs the last
 * good snapshot keeps serving, so workloads keep their identities through a server outage.
 * One log line per change of reachability, not one per failed attempt.
 */
import { countEntryChanges, entryChangeCounters, type EntryChangeCounters } from './entry-changes.js';
import { statusName, type CallHandle, type GaugeHandle, type Metrics } from '../../telemetry/metrics/index.js';
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../clock.js';
import type { RegistrationEntry, TrustBundle } from '../../domain/types.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import type { Authority, AuthoritySnapshot, AuthorityStatus, SignedJWTSVID, SignedX509SVID } from '../types.js';
import { ServerAuthorityError } from './authority-errors.js';
import { Backoff, syncBackoffMaxMs } from './backoff.js';
import { BOOTSTRAP_MAX_ELAPSED_MS, REBOOTSTRAP_MAX_ELAPSED_MS, retryBootstrap } from './bootstrap-retry.js';
import { serverVerdict } from './server-errors.js';
import { fetchBundles } from './bundle-sync.js';
import type { SyncedEntry } from './convert.js';
import { getAuthorizedEntries, syncAuthorizedEntries } from './entry-sync.js';
import { newJWTSVID } from './jwt.js';
import { SERVER_CALL_TIMEOUT_MS } from './rpc.js';
import { snapshotKey } from './snapshot-key.js';
import type { ServerSession } from './session.js';
import { X509Batcher } from './x509-batcher.js';

/** spire-agent retries the first sync and clamps to this while it has no SVIDs cached. */
const DEFAULT_SYNC_MS = 5_000;
/** How soon to sync after another call showed the server is back. */
const RECOVERY_SYNC_MS = 500;

export interface ServerAuthorityOptions {
  readonly trustDomain: string;
  readonly syncIntervalMs: number;
  readonly useSyncAuthorizedEntries: boolean;
  /** retry_bootstrap: keep retrying the first sync instead of failing start-up. */
  readonly retryBootstrap?: boolean;
  /** rebootstrap_mode is not "never": those retries may go on for 24 hours instead of 1 minute, as in spire-agent. */
  readonly rebootstrapping?: boolean;
  readonly session: ServerSession;
  readonly clock: Clock;
  readonly log: Logger;
  /** How many X509-SVIDs the cache holds (for the sync interval clamp); 0 when unknown. */
  readonly cachedX509Count?: () => number;
  /** spire-agent's manager_sync_fetch_entries_updates call metric and sync_* gauges. */
  readonly metrics?: Metrics;
  /** Test seams. */
  readonly random?: () => number;
  readonly coalesceMs?: number;
  /** Deadline of each call to the server (SERVER_CALL_TIMEOUT_MS unless set). */
  readonly callTimeoutMs?: number;
}

export class ServerAuthority implements Authority {
  private readonly entries = new Map<string, SyncedEntry>();
  private readonly listeners = new Set<(snap: AuthoritySnapshot) => void>();
  private readonly fatalListeners = new Set<(err: Error) => void>();
  private readonly backoff: Backoff;
  private readonly batcher: X509Batcher;
  private snap: AuthoritySnapshot | undefined;
  private key = '';
  private lastSync = 0;
  private reachable: boolean | undefined;
  private callState = 'unknown';
  private failures = 0;
  private cancelTimer: (() => void) | undefined;
  private syncing: Promise<void> | undefined;
  private ownBundleKey = '';
  private closed = false;
  private unsubscribeFatal: (() => void) | undefined;
  private readonly callTimeoutMs: number;

  private readonly m:
    | { fetchEntries: CallHandle; entriesTotal: GaugeHandle; entriesMissing: GaugeHandle; entriesStale: GaugeHandle; entriesDropped: GaugeHandle; bundlesTotal: GaugeHandle } & EntryChangeCounters
    | undefined;

  constructor(private readonly o: ServerAuthorityOptions) {
    this.callTimeoutMs = o.callTimeoutMs ?? SERVER_CALL_TIMEOUT_MS;
    const metrics = o.metrics;
    this.m = metrics?.enabled
      ? {
          fetchEntries: metrics.call(['manager', 'sync', 'fetch_entries_updates']),
          entriesTotal: metrics.gauge(['sync_entries_total']),
          entriesMissing: metrics.gauge(['sync_entries_missing']),
          entriesStale: metrics.gauge(['sync_entries_stale']),
          entriesDropped: metrics.gauge(['sync_entries_dropped']),
          bundlesTotal: metrics.gauge(['sync_bundles_total']),
          ...entryChangeCounters(metrics),
        }
      : undefined;
    this.backoff = new Backoff(o.syncIntervalMs, syncBackoffMaxMs(o.syncIntervalMs), o.random);
    this.batcher = new X509Batcher({
      client: () => o.session.clients().svid,
      clock: o.clock,
      onCall: (err) => this.onCall(err),
      coalesceMs: o.coalesceMs,
      callTimeoutMs: this.callTimeoutMs,
    });
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.closed) throw new ServerAuthorityError('closed', 'server-authority: closed');
    await this.o.session.start(signal);
    this.unsubscribeFatal = this.o.session.onFatal((err) => {
      for (const l of [...this.fatalListeners]) l(err);
    });
    // spire-agent's manager initialisation: with retry_bootstrap, the backoff of node attestation
    // (5 s ×1.5 up to 2 min, for 1 minute or 24 hours), given up at once when the server says the
    // agent must re-attest or shut down; otherwise the first failure ends the start.
    const retries = this.o.retryBootstrap === true;
    try {
      if (retries) {
        await retryBootstrap(() => this.syncOnce(), {
          clock: this.o.clock,
          log: this.o.log,
          maxElapsedMs: this.o.rebootstrapping === true ? REBOOTSTRAP_MAX_ELAPSED_MS : BOOTSTRAP_MAX_ELAPSED_MS,
          signal,
          random: this.o.random,
          message: 'Failed to initialize manager',
          successMessage: 'Manager initialized after failed attempts',
          isFinal: (err) => serverVerdict(err) !== undefined,
        });
      } else await this.syncOnce();
    } catch (err) {
      signal.throwIfAborted();
      throw new ServerAuthorityError(
        'initial_sync_failed',
        `server-authority: could not fetch entries and bundles from the SPIRE server: ${(err as Error).message}; ${retries ? 'retries are over; check that the server is running and reachable, then restart the agent' : 'check that the server is running and reachable, or leave retry_bootstrap at its default (true) to keep retrying'}`,
        { cause: err },
      );
    }
    this.arm(Math.min(this.backoff.next(), DEFAULT_SYNC_MS));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.unsubscribeFatal?.();
    this.batcher.close();
    await this.syncing?.catch(() => undefined);
    this.listeners.clear();
    await this.o.session.close();
  }

  snapshot(): AuthoritySnapshot {
    if (!this.snap) throw new ServerAuthorityError('not_started', 'server-authority: not started; await start() first');
    return this.snap;
  }

  onChange(listener: (snap: AuthoritySnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onFatal(listener: (err: Error) => void): () => void {
    this.fatalListeners.add(listener);
    return () => this.fatalListeners.delete(listener);
  }

  status(): AuthorityStatus {
    let agentSVID: AuthorityStatus['agentSVID'];
    try {
      const a = this.o.session.agentSVID();
      agentSVID = { spiffeId: a.spiffeId, chain: a.chain, notAfter: a.notAfter };
    } catch {
      agentSVID = undefined;
    }
    return { mode: 'server', ready: this.snap !== undefined && !this.closed, agentSVID, lastSyncSuccess: this.lastSync, serverReachable: this.reachable };
  }

  signX509SVID(entry: RegistrationEntry, csrDer: Uint8Array, opts?: { urgent?: boolean }): Promise<SignedX509SVID> {
    return this.batcher.sign(entry.id, csrDer, opts?.urgent ?? false);
  }

  expediteX509SVID(entryId: string): boolean {
    return this.batcher.expedite(entryId);
  }

  async signJWTSVID(entry: RegistrationEntry, audience: readonly string[], opts?: { timeoutMs?: number }): Promise<SignedJWTSVID> {
    try {
      const svid = await newJWTSVID(this.o.session.clients().svid, entry.id, audience, opts?.timeoutMs ?? this.callTimeoutMs);
      this.onCall(undefined);
      return svid;
    } catch (err) {
      if (!(err instanceof ServerAuthorityError)) this.onCall(err);
      throw err;
    }
  }

  /** Runs one sync now (tests; and what the timer calls). Concurrent calls share one run. */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private arm(ms: number): void {
    if (this.closed) return;
    this.cancelTimer?.();
    this.cancelTimer = this.o.clock.setTimer(ms, () => {
      this.cancelTimer = undefined;
      void this.tick();
    });
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    let wait: number;
    try {
      await this.sync();
      this.backoff.reset();
      wait = this.backoff.next();
      // Without SVIDs cached spire-agent keeps polling at the default pace, so a first entry arrives quickly.
      if ((this.o.cachedX509Count?.() ?? 0) === 0) wait = Math.min(wait, DEFAULT_SYNC_MS);
    } catch {
      wait = this.backoff.next();
    }
    this.arm(wait);
  }

  private async syncOnce(): Promise<void> {
    const log = this.o.log;
    try {
      const clients = this.o.session.clients();
      const timing = { clock: this.o.clock, callTimeoutMs: this.callTimeoutMs };
      const t0 = this.m ? performance.now() : 0;
      const stats = await (this.o.useSyncAuthorizedEntries
        ? syncAuthorizedEntries(clients.entry, this.entries, log, timing)
        : getAuthorizedEntries(clients.entry, this.entries, log, timing)
      ).catch((err: unknown) => {
        this.m?.fetchEntries.done(statusName(err), performance.now() - t0);
        throw err;
      });
      this.m?.fetchEntries.done('OK', performance.now() - t0);
      const federated = new Set<string>();
      for (const e of this.entries.values()) for (const td of e.entry.federatesWith) federated.add(td);
      const bundles = await fetchBundles(clients.bundle, this.o.trustDomain, [...federated].sort(), log, this.callTimeoutMs);
      this.onCall(undefined);
      this.lastSync = this.o.clock.now();
      log.debug({ [F.count]: stats.total, missing: stats.missing, stale: stats.stale, dropped: stats.dropped }, 'Entries synced');
      if (this.m) {
        this.m.entriesTotal.set(stats.total);
        this.m.entriesMissing.set(stats.missing);
        this.m.entriesStale.set(stats.stale);
        this.m.entriesDropped.set(stats.dropped);
        this.m.bundlesTotal.set(1 + bundles.federated.size);
      }
      await this.publish(bundles.own, bundles.federated);
    } catch (err) {
      this.onCall(err);
      throw err;
    }
  }

  private async publish(own: TrustBundle, federated: ReadonlyMap<string, TrustBundle>): Promise<void> {
    const ownKey = own.x509Authorities.map((c) => Buffer.from(c).toString('base64')).join(',');
    if (ownKey !== this.ownBundleKey) {
      // The session verifies the server with this bundle and stores it; a failure there is the session's to report.
      await this.o.session.updateBundle(own.x509Authorities).catch((err: Error) => log(this.o.log, err));
      this.ownBundleKey = ownKey;
    }
    // The agent's own SVID must leave a tainted authority too, before the server revokes it.
    if ((own.taintedX509Authorities ?? []).length > 0) this.o.session.notifyTaintedAuthorities?.(own.taintedX509Authorities ?? []);
    const entries: RegistrationEntry[] = [];
    for (const e of this.entries.values()) if (!e.storeSvid) entries.push(e.entry);
    entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (this.m) countEntryChanges(this.snap?.entries ?? [], entries, this.m);
    const snap: AuthoritySnapshot = Object.freeze({ bundle: own, federatedBundles: federated, entries: Object.freeze(entries) });
    const key = snapshotKey(snap);
    if (key === this.key && this.snap) return;
    this.key = key;
    this.snap = snap;
    for (const l of [...this.listeners]) {
      try {
        l(snap);
      } catch (err) {
        this.o.log.error({ [F.error]: String(err) }, 'Authority change listener failed');
      }
    }
  }

  /** Tracks reachability from every server call; logs changes of state only, and hands refusals to the session. */
  private onCall(err: unknown): void {
    const code = (err as Partial<grpc.ServiceError> | undefined)?.code;
    const next = err === undefined ? 'ok' : isTransportError(err) ? 'unreachable' : `refused_${code}`;
    const prev = this.callState;
    this.callState = next;
    this.reachable = next !== 'unreachable';
    if (next === 'ok') {
      if (prev === 'unreachable') {
        this.o.log.info({ failures: this.failures }, 'SPIRE server reachable again; synchronizing');
        // The sync loop may be deep in its backoff; a call that got through (an SVID renewal, a
        // JWT-SVID) shows the server is back, so entries and bundles catch up now, not minutes later.
        if (this.snap && !this.syncing) {
          this.backoff.reset();
          this.arm(RECOVERY_SYNC_MS);
        }
        // Likewise the agent SVID's rotation, whose backoff may have grown to a minute.
        this.o.session.serverAnsweredAgain?.();
      }
      this.failures = 0;
      return;
    }
    this.failures++;
    if (next !== prev) {
      const msg =
        next === 'unreachable'
          ? 'SPIRE server unreachable; workloads keep their cached SVIDs and bundles until it is back (retrying with backoff)'
          : 'SPIRE server refused a request; retrying with backoff';
      this.o.log.warn({ [F.error]: (err as Error).message }, msg);
    }
    void this.o.session.handleServerError?.(err);
  }
}

function isTransportError(err: unknown): boolean {
  // Our own typed errors (a protocol surprise, a malformed bundle) mean the server answered; a
  // stream answer that never came means it did not.
  if (err instanceof ServerAuthorityError) return err.code === 'server_timeout';
  const code = (err as Partial<grpc.ServiceError>).code;
  return code === undefined || code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED || code === grpc.status.CANCELLED || code === grpc.status.UNKNOWN;
}

function log(l: Logger, err: Error): void {
  l.warn({ [F.error]: err.message }, 'Could not hand the new trust bundle to the server session');
}
