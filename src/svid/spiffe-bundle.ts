import { createPublicKey } from 'node:crypto';
import { BundleError } from './errors.js';
import { findDuplicateKey } from './json-dupes.js';
import { jwkProblem, publicJwk, type JsonWebKey } from './jwk.js';
import { JWTBundle } from './jwt-bundle.js';
import { TrustDomain } from './spiffe-id.js';
import { X509Bundle } from './x509-bundle.js';
import { certFacts, KeyUsage, hasUsage } from './x509-cert.js';

export { BundleSet, type BundleSource } from './bundle-set.js';

const X509_USE = 'x509-svid';
const JWT_USE = 'jwt-svid';
const KNOWN_KTY = new Set(['EC', 'RSA', 'OKP']);

export interface SpiffeBundleInit {
  x509Authorities?: readonly Uint8Array[];
  jwtAuthorities?: ReadonlyMap<string, JsonWebKey>;
  sequenceNumber?: number;
  refreshHintSeconds?: number;
}

function parseJson(td: TrustDomain, text: string, what: string): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // No cause: JSON.parse's message quotes the text, which may be another file than a bundle.
    throw new BundleError('bad_json', `bundle: ${what} of "${td.name}" is not valid JSON`);
  }
  const dup = findDuplicateKey(text);
  if (dup !== undefined) {
    throw new BundleError('duplicate_key', `bundle: ${what} of "${td.name}" repeats the member "${dup}"`);
  }
  return doc;
}

function optionalUint(td: TrustDomain, doc: Record<string, unknown>, name: string): number | undefined {
  const v = doc[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new BundleError('bad_member', `bundle: "${name}" of "${td.name}" must be an unsigned integer`);
  }
  return v;
}

function x509Authority(td: TrustDomain, key: Record<string, unknown>, i: number): Uint8Array | undefined {
  if (key['kid'] !== undefined) {
    // Spec: x509-svid entries MUST NOT carry kid. We reject rather than guess what was meant.
    throw new BundleError('x509_kid_set', `bundle: x509-svid entry ${i} of "${td.name}" must not set "kid"`);
  }
  const x5c = key['x5c'];
  if (!Array.isArray(x5c) || x5c.length === 0) return undefined;
  const first = x5c[0];
  if (typeof first !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(first)) {
    throw new BundleError('bad_x5c', `bundle: x5c[0] of x509-svid entry ${i} of "${td.name}" is not standard base64`);
  }
  const der = new Uint8Array(Buffer.from(first, 'base64'));
  let facts;
  try {
    facts = certFacts(der);
  } catch (cause) {
    throw new BundleError('bad_x5c', `bundle: x5c[0] of x509-svid entry ${i} of "${td.name}" is not a certificate`, { cause });
  }
  // A non-CA certificate must never become a trust anchor (it could be a leaf SVID).
  if (!facts.isCA || (facts.keyUsage !== undefined && !hasUsage(facts, KeyUsage.keyCertSign))) {
    throw new BundleError('x509_not_ca', `bundle: x509-svid entry ${i} of "${td.name}" is not a CA certificate`);
  }
  return der;
}

export class SpiffeBundle {
  readonly trustDomain: TrustDomain;
  readonly sequenceNumber?: number;
  readonly refreshHintSeconds?: number;
  readonly #x509: X509Bundle;
  readonly #jwt: JWTBundle;

  constructor(td: TrustDomain, init: SpiffeBundleInit = {}) {
    this.trustDomain = td;
    this.#x509 = new X509Bundle(td, init.x509Authorities ?? []);
    this.#jwt = new JWTBundle(td, init.jwtAuthorities ?? new Map());
    if (init.sequenceNumber !== undefined) this.sequenceNumber = init.sequenceNumber;
    if (init.refreshHintSeconds !== undefined) this.refreshHintSeconds = init.refreshHintSeconds;
  }

  static fromBundles(
    td: TrustDomain,
    x509?: X509Bundle,
    jwt?: JWTBundle,
    opts: { sequenceNumber?: number; refreshHintSeconds?: number } = {},
  ): SpiffeBundle {
    return new SpiffeBundle(td, {
      x509Authorities: x509?.authorities() ?? [],
      jwtAuthorities: jwt?.keys() ?? new Map(),
      ...opts,
    });
  }

  /** SPIFFE bundle JSON (spec §4.1). Entries with unknown kty or use, or an x509-svid entry without x5c, are ignored. */
  static parse(td: TrustDomain, json: string | Uint8Array): SpiffeBundle {
    const text = typeof json === 'string' ? json : Buffer.from(json).toString('utf8');
    const doc = parseJson(td, text, 'SPIFFE bundle');
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new BundleError('bad_json', `bundle: SPIFFE bundle of "${td.name}" is not a JSON object`);
    }
    const d = doc as Record<string, unknown>;
    if (!Array.isArray(d['keys'])) {
      throw new BundleError('missing_keys', `bundle: SPIFFE bundle of "${td.name}" has no "keys" array (it is required, even if empty)`);
    }
    const x509Authorities: Uint8Array[] = [];
    const jwtAuthorities = new Map<string, JsonWebKey>();
    (d['keys'] as unknown[]).forEach((raw, i) => {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        throw new BundleError('bad_jwk', `bundle: key ${i} of "${td.name}" is not a JSON object`);
      }
      const key = raw as Record<string, unknown>;
      if (typeof key['kty'] !== 'string' || !KNOWN_KTY.has(key['kty'])) return;
      if (key['use'] === X509_USE) {
        const der = x509Authority(td, key, i);
        if (der) x509Authorities.push(der);
      } else if (key['use'] === JWT_USE) {
        const kid = key['kid'];
        if (typeof kid !== 'string' || kid === '') {
          throw new BundleError('missing_kid', `bundle: jwt-svid entry ${i} of "${td.name}" has no "kid"`);
        }
        const problem = jwkProblem(key);
        if (problem) throw new BundleError('bad_jwk', `bundle: jwt-svid entry ${i} of "${td.name}" ${problem}`);
        if (jwtAuthorities.has(kid)) {
          throw new BundleError('duplicate_kid', `bundle: jwt-svid entries of "${td.name}" repeat kid "${kid}"`);
        }
        jwtAuthorities.set(kid, publicJwk(key as JsonWebKey));
      }
    });
    const init: SpiffeBundleInit = { x509Authorities, jwtAuthorities };
    const seq = optionalUint(td, d, 'spiffe_sequence');
    const hint = optionalUint(td, d, 'spiffe_refresh_hint');
    if (seq !== undefined) init.sequenceNumber = seq;
    if (hint !== undefined) init.refreshHintSeconds = hint;
    return new SpiffeBundle(td, init);
  }

  x509Bundle(): X509Bundle {
    return this.#x509;
  }

  jwtBundle(): JWTBundle {
    return this.#jwt;
  }

  /** Same authorities (sequence and hint are not compared). */
  sameAuthorities(o: SpiffeBundle): boolean {
    return o.trustDomain.equals(this.trustDomain) && o.#x509.equals(this.#x509) && o.#jwt.equals(this.#jwt);
  }

  marshal(): string {
    const keys: Record<string, unknown>[] = [];
    for (const der of this.#x509.authorities()) {
      const spki = new Uint8Array(certFacts(der).cert.publicKey.rawData);
      let jwk;
      try {
        jwk = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).export({ format: 'jwk' });
      } catch (cause) {
        throw new BundleError('bad_certificate', `bundle: an X.509 authority of "${this.trustDomain.name}" has a public key that cannot be written as a JWK: ${(cause as Error).message}`, { cause });
      }
      keys.push({ ...publicJwk(jwk as JsonWebKey), use: X509_USE, x5c: [Buffer.from(der).toString('base64')] });
    }
    for (const [kid, jwk] of this.#jwt.keys()) {
      keys.push({ ...jwk, kid, use: JWT_USE });
    }
    const out: Record<string, unknown> = { keys };
    if (this.refreshHintSeconds !== undefined) out['spiffe_refresh_hint'] = this.refreshHintSeconds;
    if (this.sequenceNumber !== undefined) out['spiffe_sequence'] = this.sequenceNumber;
    return JSON.stringify(out);
  }
}

/**
 * Refresh rule: spiffe_sequence must not go backwards, and must change when contents
 * change. Throws BundleError when `next` may not replace `previous`.
 */
export function checkBundleRefresh(previous: SpiffeBundle, next: SpiffeBundle): void {
  const a = previous.sequenceNumber;
  const b = next.sequenceNumber;
  if (a === undefined || b === undefined) return;
  if (b < a) {
    throw new BundleError('sequence_regressed', `bundle: spiffe_sequence of "${next.trustDomain.name}" went from ${a} back to ${b}; keeping the newer bundle`);
  }
  if (b === a && !previous.sameAuthorities(next)) {
    throw new BundleError('sequence_not_bumped', `bundle: contents of "${next.trustDomain.name}" changed but spiffe_sequence stayed ${a}`);
  }
}

/** SPIFFE bundle map (spec §4.2): `{"trust_domains": {"<name>": <bundle>}}`. Per-bundle refresh hints are dropped. */
export function parseSpiffeBundleMap(json: string | Uint8Array): Map<string, SpiffeBundle> {
  const text = typeof json === 'string' ? json : Buffer.from(json).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // No cause: JSON.parse's message quotes the text, which may be another file than a bundle.
    throw new BundleError('bad_json', 'bundle: bundle map is not valid JSON');
  }
  const dup = findDuplicateKey(text);
  if (dup !== undefined) throw new BundleError('duplicate_key', `bundle: bundle map repeats the key "${dup}"`);
  const tds = (doc as { trust_domains?: unknown } | null)?.trust_domains;
  if (typeof tds !== 'object' || tds === null || Array.isArray(tds)) {
    throw new BundleError('bad_json', 'bundle: bundle map has no "trust_domains" object');
  }
  const out = new Map<string, SpiffeBundle>();
  for (const [name, value] of Object.entries(tds)) {
    const td = TrustDomain.parse(name);
    const b = SpiffeBundle.parse(td, JSON.stringify(value));
    const init: SpiffeBundleInit = { x509Authorities: b.x509Bundle().authorities(), jwtAuthorities: b.jwtBundle().keys() };
    if (b.sequenceNumber !== undefined) init.sequenceNumber = b.sequenceNumber;
    out.set(td.name, new SpiffeBundle(td, init));
  }
  return out;
}
