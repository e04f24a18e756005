import { JWTSVIDError } from './errors.js';
import type { BundleSource } from './bundle-set.js';
import type { JWTBundle } from './jwt-bundle.js';
import { SpiffeId } from './spiffe-id.js';

export const ALLOWED_JWT_ALGS: readonly string[] = Object.freeze([
  'RS256', 'RS384', 'RS512',
  'ES256', 'ES384', 'ES512',
  'PS256', 'PS384', 'PS512',
]);

/** go-jose's DefaultLeeway, which go-spiffe relies on. */
export const JWT_LEEWAY_SECONDS = 60;

export interface JWTSVID {
  id: SpiffeId;
  audience: string[];
  expiry: Date;
  claims: Record<string, unknown>;
  token: string;
}

interface Decoded {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  id: SpiffeId;
  exp: number;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeSegment(seg: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    if (!B64URL.test(seg)) throw new Error('not base64url');
    v = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
  } catch (cause) {
    throw new JWTSVIDError('malformed', `jwtsvid: unable to parse JWT token: ${what} is not base64url JSON`, { cause });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new JWTSVIDError('malformed', `jwtsvid: unable to parse JWT token: ${what} is not a JSON object`);
  }
  return v as Record<string, unknown>;
}

/** Everything up to (not including) the signature check, in spec §3 order. */
function decode(token: string): Decoded {
  if (typeof token !== 'string' || token.trimStart().startsWith('{')) {
    throw new JWTSVIDError('malformed', 'jwtsvid: unable to parse JWT token: only JWS compact serialization is accepted');
  }
  const parts = token.split('.');
  if (parts.length !== 3) {
    const jwe = parts.length === 5 ? ' (looks like JWE, which JWT-SVIDs never are)' : '';
    throw new JWTSVIDError('malformed', `jwtsvid: unable to parse JWT token: expected 3 dot-separated segments, got ${parts.length}${jwe}`);
  }
  const [h = '', p = '', s = ''] = parts;
  const header = decodeSegment(h, 'header');
  if (!B64URL.test(s)) {
    throw new JWTSVIDError('malformed', 'jwtsvid: unable to parse JWT token: signature is not base64url');
  }
  const alg = header['alg'];
  if (typeof alg !== 'string' || !ALLOWED_JWT_ALGS.includes(alg)) {
    throw new JWTSVIDError('alg_not_allowed', `jwtsvid: unsupported token signature algorithm ${JSON.stringify(alg)}; allowed: ${ALLOWED_JWT_ALGS.join(', ')}`);
  }
  const typ = header['typ'];
  if (typ !== undefined && typ !== 'JWT' && typ !== 'JOSE') {
    throw new JWTSVIDError('bad_typ', 'jwtsvid: token header type not equal to either JWT or JOSE');
  }
  const claims = decodeSegment(p, 'payload');
  const sub = claims['sub'];
  if (sub === undefined || sub === '') {
    throw new JWTSVIDError('missing_sub', 'jwtsvid: token missing subject claim');
  }
  const exp = claims['exp'];
  if (exp === undefined || exp === null) {
    throw new JWTSVIDError('missing_exp', 'jwtsvid: token missing exp claim');
  }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) {
    throw new JWTSVIDError('malformed', 'jwtsvid: exp claim is not a NumericDate');
  }
  for (const name of ['nbf', 'iat'] as const) {
    const v = claims[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) {
      throw new JWTSVIDError('malformed', `jwtsvid: ${name} claim is not a NumericDate`);
    }
  }
  let id: SpiffeId;
  try {
    if (typeof sub !== 'string') throw new Error('sub is not a string');
    id = SpiffeId.parse(sub);
  } catch (cause) {
    throw new JWTSVIDError('bad_sub', `jwtsvid: token has an invalid subject claim: ${(cause as Error).message}`, { cause });
  }
  return { header, claims, id, exp };
}

function audienceOf(claims: Record<string, unknown>): string[] {
  const aud = claims['aud'];
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) return aud as string[];
  if (aud === undefined) return [];
  throw new JWTSVIDError('malformed', 'jwtsvid: aud claim must be a string or an array of strings');
}

/** exp/nbf/iat with go-jose's leeway, then audience (at least one expected value present). */
function checkClaims(d: Decoded, audience: readonly string[], now: Date): string[] {
  const t = now.getTime() / 1000;
  if (t >= d.exp + JWT_LEEWAY_SECONDS) {
    throw new JWTSVIDError('expired', 'jwtsvid: token has expired');
  }
  const nbf = d.claims['nbf'] as number | undefined;
  if (nbf !== undefined && t + JWT_LEEWAY_SECONDS < nbf) {
    throw new JWTSVIDError('not_yet_valid', 'jwtsvid: token is not valid yet (nbf is in the future)');
  }
  const iat = d.claims['iat'] as number | undefined;
  if (iat !== undefined && t + JWT_LEEWAY_SECONDS < iat) {
    throw new JWTSVIDError('not_yet_valid', 'jwtsvid: token issued in the future (iat)');
  }
  const tokenAud = audienceOf(d.claims);
  if (tokenAud.length === 0) {
    throw new JWTSVIDError('bad_audience', 'jwtsvid: token missing aud claim');
  }
  if (audience.length > 0 && !audience.some((a) => tokenAud.includes(a))) {
    throw new JWTSVIDError('bad_audience', `jwtsvid: expected audience in ${JSON.stringify(audience)} (audience=${JSON.stringify(tokenAud)})`);
  }
  return tokenAud;
}

function result(d: Decoded, aud: string[], token: string): JWTSVID {
  return { id: d.id, audience: aud, expiry: new Date(d.exp * 1000), claims: d.claims, token };
}

/**
 * Parses without verifying the signature (for a workload reading its own token).
 * Claims (exp, nbf, audience) are still checked against `now`.
 */
export function parseInsecureJWTSVID(token: string, audience: readonly string[], now: Date = new Date()): JWTSVID {
  const d = decode(token);
  return result(d, checkClaims(d, audience, now), token);
}

export async function validateJWTSVID(
  token: string,
  bundles: BundleSource<JWTBundle>,
  audience: readonly string[],
  now: Date = new Date(),
): Promise<JWTSVID> {
  const d = decode(token);
  const kid = d.header['kid'];
  if (typeof kid !== 'string' || kid === '') {
    throw new JWTSVIDError('missing_kid', 'jwtsvid: token header missing key id');
  }
  const td = d.id.trustDomain;
  const bundle = bundles.bundleFor(td);
  if (!bundle) {
    throw new JWTSVIDError('no_bundle', `jwtsvid: no bundle found for trust domain "${td.name}"`);
  }
  const jwk = bundle.findKey(kid);
  if (!jwk) {
    throw new JWTSVIDError('unknown_kid', `jwtsvid: no JWT authority "${kid}" found for trust domain "${td.name}"`);
  }
  const alg = d.header['alg'] as string;
  // JOSE is loaded on the first validation, not at start (tens of ms of module loading).
  const { compactVerify, importJWK } = await import('jose');
  try {
    const key = await importJWK({ ...jwk }, alg);
    await compactVerify(token, key, { algorithms: [alg] });
  } catch (cause) {
    throw new JWTSVIDError('bad_signature', `jwtsvid: unable to get claims from token: signature does not verify with authority "${kid}" of "${td.name}"`, { cause });
  }
  return result(d, checkClaims(d, audience, now), token);
}
