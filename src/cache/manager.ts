/**
 * The agent's cache of registration entries, workload X.509-SVIDs and JWT-SVIDs.
 * SVIDs are signed on demand for entries a connected workload matches and kept in an LRU
 * bounded by x509_svid_cache_max_size (src/cache/x509-svids.ts: signing and the LRU), and
 * rotated by one timer set to the earliest rotation time among the SVIDs subscribers use. Every
 * change (entries, bundles, rotation) is broadcast to subscribers, which recompute their view and
 * decide whether anything changed.
 */
import type { Authority, AuthoritySnapshot, RegistrationEntry, Selector, SignedJWTSVID, TrustBundle } from '../authority/types.js';
import { setWallTimer, type Clock } from '../clock.js';
import type { KeyType } from '../config/types.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { JWTSVIDs } from './jwt-svids.js';
import { cacheLimit } from './limits.js';
import { EntryIndex, dedupeHints } from './selectors.js';
import { signedByAny, taintedAuthorities } from './taint.js';
import { CacheSubscription, NO_ENTRIES, type BundleView, type SubState, type SubscriptionHost, type Subscription, type WorkloadView } from './subscription.js';
import { X509SVIDs } from './x509-svids.js';

export type { BundleView, Subscription, WorkloadView, X509Identity } from './subscription.js';
export { CacheError } from './x509-svids.js';

export interface CacheManagerOptions {
  readonly authority: Authority;
  readonly keyType: KeyType;
  readonly x509CacheMaxSize: number;
  readonly jwtCacheMaxSize: number;
  /** Byte budget of the JWT-SVID cache; JWT_CACHE_MAX_BYTES unless set. */
  readonly jwtCacheMaxBytes?: number;
  readonly availabilityTargetMs: number;
  /**
   * With a still-valid cached JWT-SVID, wait this long for the authority before answering with the
   * cached one (later spire-agents' jwt_svid_cache_hit_timeout). Undefined: wait for the authority.
   */
  readonly jwtCacheHitTimeoutMs?: number;
  /**
   * Keep SVIDs for entries no workload has asked for yet, up to x509CacheMaxSize, and rotate them
   * all, as spire-agent does with a server: a new workload is then served from the cache, even
   * while the server is unreachable. Off for the embedded authority, which can always sign.
   */
  readonly prefetchX509?: boolean;
  /**
   * A workload asking for an SVID that is due for rotation but still valid gets it at once, and
   * it is renewed behind (the stream gets the new one when it comes), as spire-agent's cache
   * serves what it holds. For a remote authority, which may hang; the embedded one signs at once.
   */
  readonly serveDueX509?: boolean;
  readonly clock: Clock;
  readonly log: Logger;
}

const ROTATION_BATCH_MAX_MS = 1_000;
const ROTATION_BATCH_FRACTION = 0.02;
const TAINT_BATCH_SIZE = 100;
const TAINT_BATCH_INTERVAL_MS = 5_000;
/** When failed prefetch signings are tried again: spire-agent's sync interval. */
const PREFETCH_RETRY_MS = 5_000;

export class CacheManager {
  private snap: AuthoritySnapshot;
  private index: EntryIndex;
  /** The X.509-SVIDs; signing and the LRU are its, rotation and notifying are this class's. */
  private readonly x509: X509SVIDs;
  private readonly jwts: JWTSVIDs;
  private readonly subs = new Set<SubState>();
  /** How many subscribers use each entry id: the union of every `SubState.inUse`, kept as counts so a view costs O(its entries), not O(subscribers). */
  private readonly inUseCount = new Map<string, number>();
  private cancelTimer: (() => void) | undefined;
  /** The one pending retry of failed prefetch signings (see prefetch). */
  private cancelPrefetchRetry: (() => void) | undefined;
  private timerAt = Infinity;
  private unsubscribe: (() => void) | undefined;
  private closed = false;
  private rotationFailing = false;
  private processedTainted = new Set<string>();
  private prefetchDeferred = false;

  constructor(private readonly o: CacheManagerOptions) {
    this.x509 = new X509SVIDs({ ...o, inUse: () => this.inUse(), notify: (ids) => this.notify(ids), armTimer: () => this.armTimer() });
    this.snap = o.authority.snapshot();
    this.index = new EntryIndex(this.snap.entries);
    this.jwts = new JWTSVIDs({
      sign: (e, aud, opts) => o.authority.signJWTSVID(e, aud, opts),
      unresponsive: () => o.authority.status().serverReachable === false,
      maxCount: o.jwtCacheMaxSize,
      maxBytes: o.jwtCacheMaxBytes,
      hitTimeoutMs: o.jwtCacheHitTimeoutMs,
      clock: o.clock,
      log: o.log,
    });
  }

  /**
   * `deferPrefetch`: follow the authority now, but sign nothing ahead until startPrefetch(). The
   * agent opens its sockets first: a start-up wave of a thousand key generations would otherwise
   * fill libuv's thread pool ahead of the listener's file-system calls.
   */
  start(opts: { deferPrefetch?: boolean } = {}): void {
    this.unsubscribe = this.o.authority.onChange((snap) => this.onAuthorityChange(snap));
    this.prefetchDeferred = opts.deferPrefetch ?? false;
    this.prefetch();
  }

  startPrefetch(): void {
    this.prefetchDeferred = false;
    this.prefetch();
  }

  close(): void {
    this.closed = true;
    this.x509.close();
    this.unsubscribe?.();
    this.cancelTimer?.();
    this.cancelPrefetchRetry?.();
    this.subs.clear();
    this.inUseCount.clear();
  }

  get entryCount(): number {
    return this.index.entries.length;
  }

  get subscriberCount(): number {
    return this.subs.size;
  }

  get cachedX509Count(): number {
    return this.x509.svids.size;
  }

  get cachedJWTCount(): number {
    return this.jwts.size;
  }

  get cachedJWTBytes(): number {
    return this.jwts.bytes;
  }

  match(selectors: readonly Selector[]): RegistrationEntry[] {
    return dedupeHints(this.index.match(selectors));
  }

  bundlesFor(entries: readonly RegistrationEntry[]): BundleView {
    const federated = new Map<string, TrustBundle>();
    for (const e of entries) {
      for (const td of e.federatesWith) {
        const b = this.snap.federatedBundles.get(td);
        if (b) federated.set(td, b);
      }
    }
    return { bundle: this.snap.bundle, federatedBundles: federated };
  }

  /** All bundles the agent knows (own + every federated one), for JWT validation. */
  allBundles(): { bundle: TrustBundle; federatedBundles: ReadonlyMap<string, TrustBundle> } {
    return { bundle: this.snap.bundle, federatedBundles: this.snap.federatedBundles };
  }

  subscribe(selectors: readonly Selector[], onChange: () => void): Subscription {
    const sub = new CacheSubscription(this.subHost, selectors, onChange);
    this.subs.add(sub);
    return sub;
  }

  private readonly subHost: SubscriptionHost = {
    view: async (state) => {
      const entries = this.match(state.selectors);
      const identities = await Promise.all(entries.map((e) => this.x509.x509ForWorkload(e)));
      const inUse = new Set(entries.map((e) => e.id));
      this.setInUse(state, inUse);
      this.armIfEarlier(inUse);
      return { identities, ...this.bundlesFor(entries) };
    },
    entries: (state) => this.match(state.selectors),
    bundles: (state) => this.bundlesFor(this.match(state.selectors)),
    close: (state) => {
      if (!this.subs.delete(state)) return;
      this.setInUse(state, NO_ENTRIES);
      this.x509.evict();
    },
  };

  /** One-shot identities for a unary call (FetchJWTSVID needs no X.509 signing). */
  async x509For(selectors: readonly Selector[]): Promise<WorkloadView> {
    const entries = this.match(selectors);
    const identities = await Promise.all(entries.map((e) => this.x509.x509ForWorkload(e)));
    return { identities, ...this.bundlesFor(entries) };
  }

  jwtFor(entry: RegistrationEntry, audience: readonly string[]): Promise<SignedJWTSVID> {
    return this.jwts.fetch(entry, audience);
  }

  private inUse(): { has(id: string): boolean } {
    return { has: (id) => this.inUseCount.has(id) };
  }

  private setInUse(state: SubState, next: ReadonlySet<string>): void {
    for (const id of state.inUse) {
      const n = (this.inUseCount.get(id) ?? 0) - 1;
      if (n > 0) this.inUseCount.set(id, n);
      else this.inUseCount.delete(id);
    }
    for (const id of next) this.inUseCount.set(id, (this.inUseCount.get(id) ?? 0) + 1);
    state.inUse = next;
  }

  /**
   * After a view changed which SVIDs are in use: only an SVID newly in use can make the timer due
   * earlier (signing one re-arms it already, and with prefetch every SVID counts anyway). A timer
   * left earlier than needed only wakes rotateDue, which finds nothing due. armTimer() looks at
   * every cached SVID, which a view per new connection must not do with thousands of entries.
   */
  private armIfEarlier(ids: ReadonlySet<string>): void {
    if (this.o.prefetchX509) return;
    for (const id of ids) {
      const s = this.x509.svids.get(id);
      if (s && s.rotateAt < this.timerAt) return this.armTimer();
    }
  }

  private armTimer(): void {
    if (this.closed) return;
    const used = this.inUse();
    let next = Infinity;
    for (const [id, s] of this.x509.svids) if ((this.o.prefetchX509 || used.has(id)) && s.rotateAt < next) next = s.rotateAt;
    if (next === this.timerAt) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = next;
    if (next === Infinity) return;
    // A wall-clock timer: after a clock jump every SVID is looked at again within seconds.
    this.cancelTimer = setWallTimer(this.o.clock, next, () => {
      this.timerAt = Infinity;
      this.cancelTimer = undefined;
      void this.rotateDue();
    });
  }

  private async rotateDue(): Promise<void> {
    if (this.closed) return;
    const now = this.o.clock.now();
    const used = this.inUse();
    const due: RegistrationEntry[] = [];
    for (const [id, s] of this.x509.svids) {
      // SVIDs signed moments apart fall due moments apart; rotating those within a small
      // window together turns many wake-ups of every stream into one wave.
      const window = Math.min(ROTATION_BATCH_MAX_MS, (s.notAfter - s.notBefore) * ROTATION_BATCH_FRACTION);
      if (s.rotateAt > now + window && now >= s.notBefore) continue;
      if (this.o.prefetchX509 || used.has(id)) due.push(s.entry);
      else this.x509.svids.delete(id);
    }
    if (due.length > 0) {
      const results = await Promise.allSettled(due.map((e) => this.x509.ensureX509(e, true)));
      // One warning per wave of failures, not one per SVID every retry through a long outage.
      const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ id: due[i]!.id, err: r.reason as Error }] : []));
      if (failed.length > 0) {
        const level = this.rotationFailing ? 'debug' : 'warn';
        this.o.log[level]({ [F.entryIds]: failed.map((f) => f.id), [F.error]: failed[0]!.err.message }, 'X.509-SVID rotation failed; will retry');
      }
      this.rotationFailing = failed.length > 0;
      if (results.some((r) => r.status === 'rejected')) {
        // Retry failed rotations soon without spinning.
        this.cancelTimer?.();
        this.timerAt = now + 5_000;
        this.cancelTimer = this.o.clock.setTimer(5_000, () => {
          this.timerAt = Infinity;
          void this.rotateDue();
        });
      }
      this.notify(new Set(due.map((e) => e.id)));
    }
    this.prefetch();
    this.armTimer();
  }

  /**
   * Signs SVIDs for entries without one while there is room. A failure is retried PREFETCH_RETRY_MS
   * later (one timer however many failed), as spire-agent's sync signs what is missing every 5 s:
   * otherwise an entry whose start-up signing failed once stayed unsigned until the next change or
   * rotation, and a workload asking for it during a later outage was refused.
   */
  private prefetch(): void {
    if (!this.o.prefetchX509 || this.closed || this.prefetchDeferred) return;
    let room = cacheLimit(this.o.x509CacheMaxSize) - this.x509.svids.size - this.x509.signingCount;
    for (const e of this.index.entries) {
      if (room <= 0) break;
      if (this.x509.svids.has(e.id) || this.x509.signing(e.id)) continue;
      room--;
      this.x509.ensureX509(e).catch((err: Error) => {
        this.o.log.debug({ [F.entryId]: e.id, [F.error]: err.message }, 'Could not prefetch an X.509-SVID; will retry');
        if (this.closed || this.cancelPrefetchRetry) return;
        this.cancelPrefetchRetry = this.o.clock.setTimer(PREFETCH_RETRY_MS, () => {
          this.cancelPrefetchRetry = undefined;
          this.prefetch();
        });
      });
    }
  }

  private onAuthorityChange(snap: AuthoritySnapshot): void {
    this.snap = snap;
    this.index = new EntryIndex(snap.entries);
    const live = new Set(snap.entries.map((e) => e.id));
    for (const id of [...this.x509.svids.keys()]) if (!live.has(id)) this.x509.svids.delete(id);
    this.jwts.forget(snap);
    if (this.markTainted(snap)) this.armTimer();
    this.prefetch();
    this.notify();
  }

  /** Newly tainted authorities make every SVID they signed due now. Returns whether any was. */
  private markTainted(snap: AuthoritySnapshot): boolean {
    const fresh = (snap.bundle.taintedX509Authorities ?? []).filter((d) => !this.processedTainted.has(Buffer.from(d).toString('base64')));
    if (fresh.length === 0) return false;
    for (const d of fresh) this.processedTainted.add(Buffer.from(d).toString('base64'));
    const authorities = taintedAuthorities({ ...snap.bundle, taintedX509Authorities: fresh });
    const now = this.o.clock.now();
    let n = 0;
    for (const [id, s] of this.x509.svids) {
      if (!signedByAny(s.chain, authorities)) continue;
      // As spire-agent: batches of 100 every 5 s, the first after 5 s, so the agent's own SVID
      // (checked every 5 s) moves off the tainted authority first and the server is not flooded.
      const at = now + TAINT_BATCH_INTERVAL_MS * (1 + Math.floor(n / TAINT_BATCH_SIZE));
      if (s.rotateAt > at) this.x509.svids.set(id, { ...s, rotateAt: at });
      n++;
    }
    if (n > 0) this.o.log.info({ [F.count]: n }, 'X.509 authority tainted; re-signing the SVIDs it signed');
    return n > 0;
  }

  /** Tells subscribers something changed; with `entryIds`, only those using one of them. */
  private notify(entryIds?: ReadonlySet<string>): void {
    for (const s of this.subs) {
      if (entryIds && ![...s.inUse].some((id) => entryIds.has(id))) continue;
      try {
        s.onChange();
      } catch (err) {
        this.o.log.error({ [F.error]: (err as Error).message }, 'Subscriber failed to take an update');
      }
    }
  }
}
