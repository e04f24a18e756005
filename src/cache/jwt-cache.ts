/**
 * JWT-SVIDs by (SPIFFE ID, audience set), LRU-bounded by jwt_svid_cache_max_size. A token is
 * reused until half its lifetime; past that the authority is asked again, and if it fails (or,
 * with a hit timeout, is slow) a token that is still valid is returned, as spire-agent does.
 */
import type { AuthoritySnapshot, RegistrationEntry, SignedJWTSVID } from '../authority/types.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { cacheLimit } from './limits.js';
import { jwtStillFresh } from './rotation.js';
import { jwtKeyId, usableJwtKeyIds } from './taint.js';

export interface JWTCacheOptions {
  readonly sign: (entry: RegistrationEntry, audience: readonly string[]) => Promise<SignedJWTSVID>;
  readonly maxSize: number;
  /** With a still-valid cached token, how long to wait for `sign` before answering with it. */
  readonly hitTimeoutMs?: number;
  readonly clock: Clock;
  readonly log: Logger;
}

const SEP = '\u0000';

export class JWTCache {
  private readonly jwts = new Map<string, SignedJWTSVID>();

  constructor(private readonly o: JWTCacheOptions) {}

  get size(): number {
    return this.jwts.size;
  }

  async fetch(entry: RegistrationEntry, audience: readonly string[]): Promise<SignedJWTSVID> {
    const key = `${entry.spiffeId}${SEP}${[...new Set(audience)].sort().join(SEP)}`;
    const now = this.o.clock.now();
    const hit = entry.jwtSvidIncludeJti ? undefined : this.jwts.get(key);
    if (hit && jwtStillFresh(now, hit.issuedAt, hit.expiresAt)) {
      this.touch(key, hit);
      return hit;
    }
    const usable = hit && now < hit.expiresAt ? hit : undefined;
    let svid: SignedJWTSVID;
    try {
      svid = await this.signWithin(entry, audience, usable);
    } catch (err) {
      if (!usable || this.o.clock.now() >= usable.expiresAt) throw err;
      this.o.log.warn({ [F.spiffeId]: entry.spiffeId, [F.error]: (err as Error).message }, 'Unable to renew JWT; returning cached copy');
      return usable;
    }
    if (svid !== usable && !entry.jwtSvidIncludeJti) this.touch(key, svid);
    return svid;
  }

  /** Keeps tokens whose identity is still served and whose signing key is in the bundle and untainted. */
  forget(snap: AuthoritySnapshot): void {
    const ids = new Set(snap.entries.map((e) => e.spiffeId));
    const kids = usableJwtKeyIds(snap.bundle);
    for (const [key, svid] of [...this.jwts]) {
      const kid = jwtKeyId(svid.token);
      if (!ids.has(key.split(SEP)[0]!) || (kid !== undefined && !kids.has(kid))) this.jwts.delete(key);
    }
  }

  private touch(key: string, svid: SignedJWTSVID): void {
    this.jwts.delete(key);
    this.jwts.set(key, svid);
    while (this.jwts.size > cacheLimit(this.o.maxSize)) this.jwts.delete(this.jwts.keys().next().value!);
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
