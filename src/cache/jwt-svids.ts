/**
 * JWT-SVIDs as workloads get them: a cached token is reused until half its lifetime; past
 * that the authority is asked again, and if it fails (or, with a hit timeout, is slow) a
 * token that is still valid is returned, as spire-agent does. Storage and its count and
 * byte bounds are JWTCache's.
 */
import type { AuthoritySnapshot, RegistrationEntry, SignedJWTSVID } from '../authority/types.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { JWTCache } from './jwt-cache.js';
import { jwtStillFresh } from './rotation.js';
import { jwtKeyId, usableJwtKeyIds } from './taint.js';

export interface JWTSVIDsOptions {
  readonly sign: (entry: RegistrationEntry, audience: readonly string[]) => Promise<SignedJWTSVID>;
  readonly maxCount: number;
  /** JWT_CACHE_MAX_BYTES unless set. */
  readonly maxBytes?: number | undefined;
  /** With a still-valid cached JWT-SVID, how long to wait for `sign` before answering with it. */
  readonly hitTimeoutMs?: number | undefined;
  readonly clock: Clock;
  readonly log: Logger;
}

export class JWTSVIDs {
  private readonly cache: JWTCache;

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
    let svid: SignedJWTSVID;
    try {
      svid = await this.signWithin(entry, audience, usable);
    } catch (err) {
      if (!usable || this.o.clock.now() >= usable.expiresAt) throw err;
      this.o.log.warn({ [F.spiffeId]: entry.spiffeId, [F.error]: (err as Error).message }, 'Unable to renew JWT; returning cached copy');
      return usable;
    }
    if (svid !== usable) this.cache.set(key, svid, entry.spiffeId);
    return svid;
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

  /** A slow authority is raced against the hit timeout; its late answer is dropped (the next call asks again). */
  private signWithin(entry: RegistrationEntry, audience: readonly string[], fallback: SignedJWTSVID | undefined): Promise<SignedJWTSVID> {
    const p = this.o.sign(entry, audience);
    const limit = this.o.hitTimeoutMs;
    if (!fallback || limit === undefined) return p;
    return new Promise((resolve, reject) => {
      const cancel = this.o.clock.setTimer(limit, () => resolve(fallback));
      p.then(
        (v) => (cancel(), resolve(v)),
        (e) => (cancel(), reject(e)),
      );
    });
  }
}
