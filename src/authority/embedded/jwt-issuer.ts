import { randomBytes } from 'node:crypto';
import type { RegistrationEntry, SignedJWTSVID } from '../types.js';
import type { JWTKey } from './ca.js';
import { EmbeddedAuthorityError } from './errors.js';
import { jwsAlgorithm } from '../../crypto/keys.js';

export interface IssueJWTOptions {
  key: JWTKey;
  entry: RegistrationEntry;
  audience: readonly string[];
  now: number;
  defaultTtlMs: number;
  /** Cap: the signing key's generation expiry (its public key leaves the bundle then). */
  notAfter: number;
  /** The generation's start: a key is not used before it (the clock went back). */
  notBefore?: number | undefined;
  issuer: string | undefined;
}

/** A JWT-SVID as SPIRE issues it: {alg, kid, typ:"JWT"}; sub, aud[], exp, iat, optional iss/jti. */
export async function issueJWTSVID(o: IssueJWTOptions): Promise<SignedJWTSVID> {
  if (o.audience.length === 0 || o.audience.some((a) => typeof a !== 'string' || a === '')) {
    throw new EmbeddedAuthorityError('jwt_audience', 'jwtsvid: at least one non-empty audience is required');
  }
  const ttlMs = o.entry.jwtSvidTtl > 0 ? o.entry.jwtSvidTtl * 1000 : o.defaultTtlMs;
  const iat = Math.floor(o.now / 1000);
  const exp = Math.min(Math.floor((o.now + ttlMs) / 1000), Math.floor(o.notAfter / 1000));
  if (exp <= iat || (o.notBefore !== undefined && o.notBefore > o.now)) {
    throw new EmbeddedAuthorityError('ca_not_valid', `jwtsvid: the JWT signing key is not valid now (${new Date(o.now).toISOString()}); it must be rotated first`);
  }
  // Loaded on the first JWT-SVID: most agents never sign one, and jose stays out of their memory.
  const { SignJWT } = await import('jose');
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: jwsAlgorithm(o.key.keyType), kid: o.key.kid, typ: 'JWT' })
    .setSubject(o.entry.spiffeId)
    // Always an array, even for one audience, as SPIRE does.
    .setAudience([...o.audience])
    .setIssuedAt(iat)
    .setExpirationTime(exp);
  if (o.issuer) jwt.setIssuer(o.issuer);
  if (o.entry.jwtSvidIncludeJti) jwt.setJti(randomBytes(16).toString('base64url'));
  const token = await jwt.sign(o.key.keys.privateKey);
  return { token, issuedAt: iat * 1000, expiresAt: exp * 1000 };
}
