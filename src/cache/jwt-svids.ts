/**
 * JWT-SVIDs as workloads get them: a cached token is reused until half its lifetime; past
 * that the authority is asked again, and if it fails, is slow or is known not to answer, a
 * token that is still valid is returned, as spire-agent does when it cannot renew. Storage and
 * its count and byte bounds are JWTCache's.
 */
import type { AuthoritySnapshot, RegistrationEntry, SignedJWTSVID } from '../authority/types.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { JWTCache } from './jwt-cache.js';
import { jwtStillFresh } from './rotation.js';
import { jwtKeyId, usableJwtKeyIds } from './taint.js';

/**
 * Without jwt_svid_cache_hit_timeout, how long a caller with a still-valid cached token waits for
 * a fresh one. A working server mints one in milliseconds; past this the caller gets the cached
 * token and the fresh one, when it comes, is cached for the next caller. Short against any
 * client's deadline, so a server that has just hung costs a workload at most this.
 */
export const CACHED_JWT_WAIT_MS = 1_000;

export interface JWTSVIDsOptions {
  readonly sign: (entry: RegistrationEntry, audience: readonly string[], opts?: { timeoutMs?: number }) => Promise<SignedJWTSVID>;
  readonly maxCount: number;
  /** JWT_CACHE_MAX_BYTES unless set. */
  readonly maxBytes?: number | undefined;
  /** With a still-valid cached JWT-SVID, how long to wait for `sign` before answering with it (and the deadline of that call). */
  readonly hitTimeoutMs?: number | undefined;
  /** True while the authority is known not to answer (its last call failed or timed out): a valid cached token is returned at once. */
  readonly unresponsive?: () => boolean;
  readonly clock: Clock;
  readonly log: Logger;
}

export class JWTSVIDs {
  private readonly cache: JWTCache;
  /** One renewal per cache key at a time: callers during a slow or hung call share it. */
  private readonly renewing = new Map<string, Promise<SignedJWTSVID>>();

  constructor(private readonly o: JWTSVIDsOptions) {
    this.cache = new JWTCache({ maxCount: o.maxCount, maxBytes: o.maxBytes });
  }

  get size(): number {
    return this.cache.size;
  }

  get bytes(): number {
    return this.cache.bytes;
  }

  async fetch(entry: RegistrationEntry, audience: readonly string[]): Promise<SignedJWTSVID> {
    // jwt_svid_include_jti asks for a fresh token every time.
    if (entry.jwtSvidIncludeJti) return this.o.sign(entry, audience);
    const key = JWTCache.key(entry.spiffeId, audience);
    const now = this.o.clock.now();
    const hit = this.cache.peek(key);
    // A token whose iat is ahead of the clock (the wall clock jumped back) is signed again.
    if (hit && hit.issuedAt <= now && jwtStillFresh(now, hit.issuedAt, hit.expiresAt)) return hit;
    const usable = hit && hit.issuedAt <= now && now < hit.expiresAt ? hit : undefined;
    if (!usable) return this.renew(key, entry, audience, undefined);
    const renewal = this.renew(key, entry, audience, this.o.hitTimeoutMs);
    if (this.o.unresponsive?.()) {
      // Waiting would only cost the caller the call's deadline; the renewal goes on behind.
      renewal.catch((err: Error) => this.o.log.debug({ [F.spiffeId]: entry.spiffeId, [F.error]: err.message }, 'Unable to renew JWT; the cached copy is served meanwhile'));
      return usable;
    }
    try {
      return (await this.within(renewal, this.o.hitTimeoutMs ?? CACHED_JWT_WAIT_MS)) ?? usable;
    } catch (err) {
      if (this.o.clock.now() >= usable.expiresAt) throw err;
      this.o.log.warn({ [F.spiffeId]: entry.spiffeId, [F.error]: (err as Error).message }, 'Unable to renew JWT; returning cached copy');
      return usable;
    }
  }

  /** Keeps tokens whose identity is still served and whose signing key is in the bundle and untainted. */
  forget(snap: AuthoritySnapshot): void {
    const ids = new Set(snap.entries.map((e) => e.spiffeId));
    const kids = usableJwtKeyIds(snap.bundle);
    this.cache.retain((spiffeId, svid) => {
      const kid = jwtKeyId(svid.token);
      return ids.has(spiffeId) && (kid === undefined || kids.has(kid));
    });
  }

  /** Signs for `key`, or joins the signing already under way; the token is cached when it comes, however late. */
  private renew(key: string, entry: RegistrationEntry, audience: readonly string[], timeoutMs: number | undefined): Promise<SignedJWTSVID> {
    let p = this.renewing.get(key);
    if (!p) {
      p = this.o
        .sign(entry, audience, timeoutMs === undefined ? undefined : { timeoutMs })
        .then((svid) => {
          this.cache.set(key, svid, entry.spiffeId);
          return svid;
        })
        .finally(() => this.renewing.delete(key));
      this.renewing.set(key, p);
    }
    return p;
  }

  /** `p`'s value, or undefined if it takes longer than `ms`; its error if it fails first. */
  private within(p: Promise<SignedJWTSVID>, ms: number): Promise<SignedJWTSVID | undefined> {
    return new Promise((resolve, reject) => {
      const cancel = this.o.clock.setTimer(ms, () => resolve(undefined));
      p.then(
        (v) => (cancel(), resolve(v)),
        (e) => (cancel(), reject(e)),
      );
    });
  }
}
