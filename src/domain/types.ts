/**
 * The agent's domain values: registration entries, selectors and trust bundles. They sit
 * below every other layer (authority, cache, endpoints, telemetry) so that none of those
 * has to import another to name them; this module imports nothing of the daemon's.
 */
import type { webcrypto } from 'node:crypto';

export interface Selector {
  readonly type: string;
  readonly value: string;
}

export interface RegistrationEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: readonly Selector[];
  /** Seconds; 0 means the authority's default. */
  readonly x509SvidTtl: number;
  readonly jwtSvidTtl: number;
  readonly dnsNames: readonly string[];
  readonly hint: string;
  /** Trust domain names (no scheme). */
  readonly federatesWith: readonly string[];
  readonly admin: boolean;
  readonly downstream: boolean;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly revisionNumber: number;
  readonly jwtSvidIncludeJti: boolean;
}

export interface JWTAuthority {
  readonly keyId: string;
  /** Public key as a JWK (no private members). */
  readonly publicKey: webcrypto.JsonWebKey;
  /** Unix seconds, 0 = unknown. */
  readonly expiresAt: number;
  /** The server has marked this key as no longer to be trusted for new JWT-SVIDs (rotation in progress). */
  readonly tainted?: boolean;
}

export interface TrustBundle {
  /** Bare name, e.g. "example.org". */
  readonly trustDomain: string;
  /** DER certificates of the X.509 authorities (tainted ones included: they still verify until revoked). */
  readonly x509Authorities: readonly Uint8Array[];
  readonly jwtAuthorities: readonly JWTAuthority[];
  readonly sequenceNumber: number;
  readonly refreshHintSeconds: number;
  /**
   * DER of the X.509 authorities the server has tainted: SVIDs they signed must be re-signed
   * before the authority is revoked. Absent or empty when nothing is tainted.
   */
  readonly taintedX509Authorities?: readonly Uint8Array[];
}
