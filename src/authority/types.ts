/**
 * Where SVIDs come from. The embedded CA (./embedded) and the SPIRE server client
 * (./server) both implement Authority; the cache manager only sees this, and the agent
 * picks one with ./factory.ts.
 */
import type { RegistrationEntry, TrustBundle } from '../domain/types.js';

// The domain values live in src/domain (below telemetry and the cache); re-exported so existing imports keep working.
export type { JWTAuthority, RegistrationEntry, Selector, TrustBundle } from '../domain/types.js';

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
  /**
   * Sign a workload X.509-SVID for `entry` from a PKCS#10 CSR (DER). `urgent`: a workload waits
   * for it, so an authority that batches (the SPIRE server's) sends it at once.
   */
  signX509SVID(entry: RegistrationEntry, csrDer: Uint8Array, opts?: { urgent?: boolean }): Promise<SignedX509SVID>;
  /** A workload now waits for a signing already queued: send it at once. Returns whether one was queued. */
  expediteX509SVID?(entryId: string): boolean;
  /** `timeoutMs`: how long a remote authority may take (its own deadline unless set). */
  signJWTSVID(entry: RegistrationEntry, audience: readonly string[], opts?: { timeoutMs?: number }): Promise<SignedJWTSVID>;
  /** Re-read whatever the authority reads from disk (SIGHUP). */
  reload?(): Promise<void>;
  /** What Debug GetInfo, /ready and grpc.health report; cheap, no I/O. */
  status(): AuthorityStatus;
  /**
   * The authority can no longer serve (the server banned or evicted the agent and it cannot
   * attest again, or trust is broken for good): the agent stops with this error, as spire-agent exits.
   */
  onFatal?(listener: (err: Error) => void): () => void;
}

export interface AgentSVIDInfo {
  /** e.g. spiffe://example.org/spire/agent/join_token/<token> */
  readonly spiffeId: string;
  /** DER certificates, leaf first. */
  readonly chain: readonly Uint8Array[];
  /** Epoch ms. */
  readonly notAfter: number;
}

export interface AuthorityStatus {
  readonly mode: 'embedded' | 'server';
  /** A snapshot exists to serve from (after a first successful start; stays true through server outages). */
  readonly ready: boolean;
  /** The agent's own SVID; undefined for the embedded authority, which has none. */
  readonly agentSVID: AgentSVIDInfo | undefined;
  /** Epoch ms of the last successful entry/bundle sync with the server; 0 if never (always 0 when embedded). */
  readonly lastSyncSuccess: number;
  /** Whether the last call to the server succeeded; undefined when there is no server. */
  readonly serverReachable: boolean | undefined;
}
