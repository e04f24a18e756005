/**
 * Minted JWT-SVIDs, reused until half their lifetime (SPIRE's rule), in an LRU bounded
 * by count (jwt_svid_cache_max_size) and by bytes. A count alone does not bound memory:
 * a token carries its audience, so a few callers asking with huge audiences would pin
 * hundreds of megabytes. Keys are digests, so the audience is held once, in the token.
 */
import { createHash } from 'node:crypto';
import type { SignedJWTSVID } from '../authority/types.js';
import { jwtStillFresh } from './rotation.js';

/** Default byte budget: ~10,000 ordinary tokens, or ~700 with the largest audience the API allows. */
export const JWT_CACHE_MAX_BYTES = 8 * 1024 * 1024;

/** Per-token bookkeeping on top of the token text: key, timestamps, map slot. */
const ENTRY_OVERHEAD_BYTES = 256;

export interface JWTCacheOptions {
  readonly maxCount: number;
  readonly maxBytes?: number | undefined;
}

export class JWTCache {
  private readonly tokens = new Map<string, { svid: SignedJWTSVID; spiffeId: string; bytes: number }>();
  private total = 0;
  private readonly maxCount: number;
  private readonly maxBytes: number;

  constructor(o: JWTCacheOptions) {
    this.maxCount = Math.max(1, o.maxCount);
    this.maxBytes = Math.max(1, o.maxBytes ?? JWT_CACHE_MAX_BYTES);
  }

  get size(): number {
    return this.tokens.size;
  }

  /** Approximate memory held, in bytes (token text counted as UTF-16, as V8 may store it). */
  get bytes(): number {
    return this.total;
  }

  static key(spiffeId: string, audience: readonly string[]): string {
    const h = createHash('sha256').update(spiffeId);
    // Length-prefixed, so ["a,b"] and ["a", "b"] cannot collide.
    for (const a of [...new Set(audience)].sort()) h.update(`\u0000${a.length}:`).update(a);
    return h.digest('base64url');
  }

  /** A token still fresh at `now`, refreshed in LRU order; stale ones are dropped. */
  get(key: string, now: number): SignedJWTSVID | undefined {
    const hit = this.tokens.get(key);
    if (!hit) return undefined;
    this.tokens.delete(key);
    if (!jwtStillFresh(now, hit.svid.issuedAt, hit.svid.expiresAt)) {
      this.total -= hit.bytes;
      return undefined;
    }
    this.tokens.set(key, hit);
    return hit.svid;
  }

  /** The token under `key` however old, refreshed in LRU order (the caller judges it). */
  peek(key: string): SignedJWTSVID | undefined {
    const hit = this.tokens.get(key);
    if (!hit) return undefined;
    this.tokens.delete(key);
    this.tokens.set(key, hit);
    return hit.svid;
  }

  set(key: string, svid: SignedJWTSVID, spiffeId = ''): void {
    this.delete(key);
    const bytes = svid.token.length * 2 + key.length * 2 + ENTRY_OVERHEAD_BYTES;
    // A token bigger than the whole budget would only evict everything else.
    if (bytes > this.maxBytes) return;
    this.tokens.set(key, { svid, spiffeId, bytes });
    this.total += bytes;
    for (const [k, v] of this.tokens) {
      if (this.tokens.size <= this.maxCount && this.total <= this.maxBytes) break;
      this.tokens.delete(k);
      this.total -= v.bytes;
    }
  }

  delete(key: string): void {
    const old = this.tokens.get(key);
    if (!old) return;
    this.tokens.delete(key);
    this.total -= old.bytes;
  }

  /** Drops every token `keep` refuses (an identity no longer served, a signing key withdrawn). */
  retain(keep: (spiffeId: string, svid: SignedJWTSVID) => boolean): void {
    for (const [k, v] of [...this.tokens]) if (!keep(v.spiffeId, v.svid)) this.delete(k);
  }

  clear(): void {
    this.tokens.clear();
    this.total = 0;
  }
}
