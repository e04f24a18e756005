/**
 * The agent's workload X.509-SVIDs: signed on demand (a waiting workload's signing moved ahead of a
 * prefetch or rotation wave), one per entry, kept in an LRU bounded by x509_svid_cache_max_size
 * whose entries a live subscriber uses are never evicted. When to rotate them, and whom to tell,
 * is the CacheManager's: it owns the subscribers and the rotation timer, and passes in the three
 * hooks this needs from them.
 */
import type { Authority, RegistrationEntry } from '../authority/types.js';
import type { Clock } from '../clock.js';
import type { KeyType } from '../config/types.js';
import { SpiffeAgentError, type ErrorCodes } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { WaveKeys, generateKeyAndCsrNow } from './keys.js';
import { cacheLimit } from './limits.js';
import { rotationTime, x509StillFresh } from './rotation.js';
import type { X509Identity } from './subscription.js';

declare module '../errors.js' {
  interface ErrorCodes {
    cache: 'sign_failed';
  }
}

export class CacheError extends SpiffeAgentError<ErrorCodes['cache']> {}

/** After a failed renewal, when to try again (spire-agent's SVID sync also runs every few seconds). */
const SIGN_RETRY_MS = 5_000;

export interface X509SVIDsOptions {
  readonly authority: Authority;
  readonly keyType: KeyType;
  readonly x509CacheMaxSize: number;
  readonly availabilityTargetMs: number;
  /** CacheManagerOptions.serveDueX509. */
  readonly serveDueX509?: boolean | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  /** Entry ids a live subscriber uses (never evicted). */
  readonly inUse: () => { has(id: string): boolean };
  /** Tells the subscribers using one of these entries that their view changed. */
  readonly notify: (entryIds: ReadonlySet<string>) => void;
  /** Re-arms the rotation timer after a new SVID is stored. */
  readonly armTimer: () => void;
}

export class X509SVIDs {
  /** By entry id, least recently used first. The manager's rotation reads it and marks SVIDs due in it. */
  readonly svids = new Map<string, X509Identity>();
  private readonly inflight = new Map<string, Promise<X509Identity>>();
  /**
   * A waiting workload's own signing of an entry whose wave signing (start-up prefetch, rotation)
   * was already past the authority's queue: a fresh key and CSR in an urgent call. At most one per
   * entry at a time; whichever of the two finishes first is kept (see signX509).
   */
  private readonly urgentSignings = new Map<string, Promise<X509Identity>>();
  /** Signing has been failing (authority unreachable): logged once when it starts and once when it ends. */
  private signingFailing = false;
  private closed = false;
  private readonly waveKeys: WaveKeys;

  constructor(private readonly o: X509SVIDsOptions) {
    this.waveKeys = new WaveKeys(o.keyType);
  }

  close(): void {
    this.closed = true;
  }

  /** Whether a signing of this entry is under way. */
  signing(entryId: string): boolean {
    return this.inflight.has(entryId);
  }

  /** How many signings are under way. */
  get signingCount(): number {
    return this.inflight.size;
  }

  /**
   * ensureX509 for a workload that is waiting: a signing already under way for a prefetch or a
   * rotation wave (hundreds of CSRs at start-up with a server) is moved ahead of that wave.
   */
  x509ForWorkload(entry: RegistrationEntry): Promise<X509Identity> {
    const due = this.o.serveDueX509 ? this.dueButValid(entry) : undefined;
    if (due) return Promise.resolve(due);
    const pending = this.inflight.get(entry.id);
    if (!pending) return this.ensureX509(entry);
    // The embedded authority signs at once; a CSR still in the server authority's queue moves ahead.
    if (!this.o.authority.expediteX509SVID || this.o.authority.expediteX509SVID(entry.id)) return pending;
    // Its key is still being generated behind the wave, or its CSR is inside a batch of up to 500
    // with the server: sign once more, urgently, and take whichever comes first.
    let own = this.urgentSignings.get(entry.id);
    if (!own) {
      own = this.signX509(entry, true).finally(() => this.urgentSignings.delete(entry.id));
      this.urgentSignings.set(entry.id, own);
    }
    return firstOf(pending, own);
  }

  /**
   * The cached SVID of `entry` when it is past its rotation time but still valid, with its renewal
   * started behind if none is under way (rotateDue's, or an earlier caller's). A renewal started
   * here tells the entry's subscribers when it brings a new SVID.
   */
  private dueButValid(entry: RegistrationEntry): X509Identity | undefined {
    const cached = this.svids.get(entry.id);
    const now = this.o.clock.now();
    if (!cached || cached.entry.revisionNumber !== entry.revisionNumber || cached.entry.spiffeId !== entry.spiffeId) return undefined;
    if (now < cached.notBefore || now >= cached.notAfter || x509StillFresh(now, cached.notBefore, cached.rotateAt)) return undefined;
    if (!this.inflight.has(entry.id)) {
      this.ensureX509(entry, true).then(
        (next) => next.serial !== cached.serial && this.o.notify(new Set([entry.id])),
        () => undefined, // ensureX509 logs; rotateDue retries
      );
    }
    return cached;
  }

  ensureX509(entry: RegistrationEntry, force = false): Promise<X509Identity> {
    const now = this.o.clock.now();
    const cached = this.svids.get(entry.id);
    if (!force && cached && cached.entry.revisionNumber === entry.revisionNumber && cached.entry.spiffeId === entry.spiffeId && x509StillFresh(now, cached.notBefore, cached.rotateAt)) {
      // Refresh LRU position.
      this.svids.delete(entry.id);
      this.svids.set(entry.id, cached.entry === entry ? cached : { ...cached, entry });
      return Promise.resolve(this.svids.get(entry.id)!);
    }
    const pending = this.inflight.get(entry.id);
    if (pending) return pending;
    // Stale by the clock alone (the entry is unchanged): the wall clock jumped, or the loop is late, and
    // this caller got here before the rotation timer's next look. Its new SVID replaces the one every open
    // stream of the entry holds, and nothing else would tell them until their next re-attestation tick.
    const staleByClock = !force && cached !== undefined && cached.entry.revisionNumber === entry.revisionNumber && cached.entry.spiffeId === entry.spiffeId;
    const p = this.signX509(entry)
      .then((identity) => {
        if (this.signingFailing) this.o.log.info({ [F.spiffeId]: entry.spiffeId }, 'X.509-SVID signing works again');
        this.signingFailing = false;
        if (staleByClock && identity.serial !== cached.serial) this.o.notify(new Set([entry.id]));
        return identity;
      })
      .catch((err: unknown) => {
        if (!cached || cached.entry.spiffeId !== entry.spiffeId || this.closed) throw err;
        // Retry in a while rather than at once: the SVID stays due, and an immediate timer would spin.
        const now = this.o.clock.now();
        const retry = { ...cached, rotateAt: now + SIGN_RETRY_MS };
        if (this.svids.get(entry.id) === cached) this.svids.set(entry.id, retry);
        // The authority is unreachable: an SVID that is due for rotation but still valid keeps serving.
        if (now >= cached.notAfter) throw err;
        if (!this.signingFailing) {
          this.o.log.warn({ [F.spiffeId]: entry.spiffeId, [F.error]: (err as Error).message }, 'Could not renew X.509-SVIDs; serving the cached ones until they can be renewed');
        }
        this.signingFailing = true;
        return retry;
      })
      .finally(() => this.inflight.delete(entry.id));
    this.inflight.set(entry.id, p);
    return p;
  }

  /**
   * `urgent`: a workload waits (its key is made on the spot, its CSR skips the queue). When another
   * signing of the same entry (the wave's, or a workload's urgent one) stored a new SVID meanwhile,
   * that one is kept and returned: the cache holds one SVID per entry and a workload's view does
   * not change twice.
   */
  private async signX509(entry: RegistrationEntry, urgent = false): Promise<X509Identity> {
    const before = this.svids.get(entry.id)?.serial;
    const newer = (): X509Identity | undefined => {
      const cur = this.svids.get(entry.id);
      return cur && cur.serial !== before && cur.entry.revisionNumber === entry.revisionNumber && cur.entry.spiffeId === entry.spiffeId ? cur : undefined;
    };
    const { pkcs8, csrDer } = await (urgent ? generateKeyAndCsrNow(this.o.keyType) : this.waveKeys.next());
    const done = newer();
    if (done) return done;
    const issuedAt = this.o.clock.now();
    let signed;
    try {
      signed = await this.o.authority.signX509SVID(entry, csrDer, { urgent });
    } catch (err) {
      throw new CacheError('sign_failed', `cache: could not obtain an X.509-SVID for ${entry.spiffeId}: ${(err as Error).message}`, { cause: err });
    }
    const raced = newer();
    if (raced) return raced;
    const identity: X509Identity = {
      entry,
      chain: signed.chain,
      keyPkcs8: pkcs8,
      serial: signed.serial,
      notBefore: signed.notBefore,
      notAfter: signed.notAfter,
      // notBefore is backdated for clock skew; half-life counts from when we got the SVID,
      // otherwise a short TTL would look "past half-life" at once and rotate in a loop.
      rotateAt: rotationTime(Math.max(signed.notBefore, issuedAt), signed.notAfter, this.o.availabilityTargetMs),
    };
    if (this.closed) return identity;
    this.svids.delete(entry.id);
    this.svids.set(entry.id, identity);
    this.o.log.debug(
      { [F.entryId]: entry.id, [F.spiffeId]: entry.spiffeId, [F.serial]: signed.serial, [F.expiresAt]: new Date(signed.notAfter).toISOString() },
      'X.509-SVID issued',
    );
    this.evict();
    this.o.armTimer();
    return identity;
  }

  /** Drops least-recently-used SVIDs nobody subscribes to, down to the configured size. */
  evict(): void {
    const max = cacheLimit(this.o.x509CacheMaxSize);
    if (this.svids.size <= max) return;
    const used = this.o.inUse();
    for (const id of this.svids.keys()) {
      if (this.svids.size <= max) break;
      if (!used.has(id)) this.svids.delete(id);
    }
  }
}

/** The first of two signings of one entry to succeed; rejects with the first's error when both fail. */
function firstOf(a: Promise<X509Identity>, b: Promise<X509Identity>): Promise<X509Identity> {
  return new Promise((resolve, reject) => {
    let failed = 0;
    let firstErr: unknown;
    const fail = (which: number) => (err: unknown) => {
      if (which === 0) firstErr = err;
      if (++failed === 2) reject(firstErr);
    };
    a.then(resolve, fail(0));
    b.then(resolve, fail(1));
  });
}
