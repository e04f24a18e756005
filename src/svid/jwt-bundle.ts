import { BundleError } from './errors.js';
import { jwkProblem, publicJwk, type JsonWebKey } from './jwk.js';
import type { TrustDomain } from './spiffe-id.js';

export type { JsonWebKey } from './jwk.js';

/** The JWT authorities (public keys by kid) of one trust domain. Immutable. */
export class JWTBundle {
  readonly trustDomain: TrustDomain;
  readonly #keys: ReadonlyMap<string, JsonWebKey>;

  constructor(td: TrustDomain, keys: ReadonlyMap<string, JsonWebKey>) {
    const copy = new Map<string, JsonWebKey>();
    for (const [kid, jwk] of keys) {
      if (kid === '') throw new BundleError('missing_kid', `bundle: JWT authority of "${td.name}" has an empty key ID`);
      const problem = jwkProblem(jwk);
      if (problem) throw new BundleError('bad_jwk', `bundle: JWT authority "${kid}" of "${td.name}" ${problem}`);
      copy.set(kid, Object.freeze(publicJwk(jwk)));
    }
    this.trustDomain = td;
    this.#keys = copy;
  }

  /** Parses a plain RFC 7517 JWKS (Workload API encoding). Every key needs a unique `kid`. */
  static fromJWKS(td: TrustDomain, bytesOrText: Uint8Array | string): JWTBundle {
    const text = typeof bytesOrText === 'string' ? bytesOrText : Buffer.from(bytesOrText).toString('utf8');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      // No cause: JSON.parse's message quotes the text, which may be another file than a bundle.
      throw new BundleError('bad_json', `bundle: JWKS of "${td.name}" is not valid JSON`);
    }
    const keys = (doc as { keys?: unknown } | null)?.keys;
    if (typeof doc !== 'object' || doc === null || !Array.isArray(keys)) {
      throw new BundleError('missing_keys', `bundle: JWKS of "${td.name}" has no "keys" array`);
    }
    const map = new Map<string, JsonWebKey>();
    keys.forEach((k: unknown, i) => {
      const kid = (k as { kid?: unknown } | null)?.kid;
      if (typeof kid !== 'string' || kid === '') {
        throw new BundleError('missing_kid', `bundle: JWT authority ${i} of "${td.name}" has no "kid"; every JWT authority needs one`);
      }
      if (map.has(kid)) {
        throw new BundleError('duplicate_kid', `bundle: JWT authorities of "${td.name}" repeat kid "${kid}"`);
      }
      map.set(kid, k as JsonWebKey);
    });
    return new JWTBundle(td, map);
  }

  findKey(kid: string): JsonWebKey | undefined {
    const k = this.#keys.get(kid);
    return k ? { ...k } : undefined;
  }

  keys(): Map<string, JsonWebKey> {
    return new Map([...this.#keys].map(([kid, k]) => [kid, { ...k }]));
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Plain JWKS: public parameters plus `kid`, no `use`, no spiffe_* members. */
  toJWKS(): Uint8Array {
    const keys = [...this.#keys].map(([kid, k]) => ({ ...k, kid }));
    return new Uint8Array(Buffer.from(JSON.stringify({ keys }), 'utf8'));
  }

  equals(o: unknown): boolean {
    if (!(o instanceof JWTBundle) || !o.trustDomain.equals(this.trustDomain)) return false;
    if (o.#keys.size !== this.#keys.size) return false;
    for (const [kid, k] of this.#keys) {
      const other = o.#keys.get(kid);
      if (!other || JSON.stringify(other) !== JSON.stringify(k)) return false;
    }
    return true;
  }
}
