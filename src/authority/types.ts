/**
 * Where SVIDs come from. The embedded CA (./embedded) and the SPIRE server client
 * (./server, issue 3) both implement Authority; the cache manager only sees this.
 */
import type { JsonWebKey } from '../svid/jwk.js';

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
  readonly publicKey: JsonWebKey;
  /** Unix seconds, 0 = unknown. */
  readonly expiresAt: number;
}

export interface TrustBundle {
  /** Bare name, e.g. "example.org". */
  readonly trustDomain: string;
  /** DER certificates of the X.509 authorities. */
  readonly x509Authorities: readonly Uint8Array[];
  readonly jwtAuthorities: readonly JWTAuthority[];
  readonly sequenceNumber: number;
  readonly refreshHintSeconds: number;
}

export interface AuthoritySnapshot {
  readonly bundle: TrustBundle;
  /** Keyed by bare trust domain name. */
  readonly federatedBundles: ReadonlyMap<string, TrustBundle>;
  /** Entries this agent may serve (for a SPIRE server: the authorized entries). */
  readonly entries: readonly RegistrationEntry[];
}

export interface SignedX509SVID {
  /** DER certificates, leaf first, intermediates after, root excluded. */
  readonly chain: readonly Uint8Array[];
  readonly serial: string;
  /** Epoch ms. */
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface SignedJWTSVID {
  readonly token: string;
  /** Epoch ms. */
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export interface Authority {
  /** Resolves once a first snapshot exists (CA loaded/created, entries read, or first sync done). */
  start(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
  snapshot(): AuthoritySnapshot;
  /** Called after every snapshot change (entries, bundle, federated bundles). Returns an unsubscribe function. */
  onChange(listener: (snap: AuthoritySnapshot) => void): () => void;
  /** Sign a workload X.509-SVID for `entry` from a PKCS#10 CSR (DER). */
  signX509SVID(entry: RegistrationEntry, csrDer: Uint8Array): Promise<SignedX509SVID>;
  signJWTSVID(entry: RegistrationEntry, audience: readonly string[]): Promise<SignedJWTSVID>;
  /** Re-read whatever the authority reads from disk (SIGHUP). */
  reload?(): Promise<void>;
}
