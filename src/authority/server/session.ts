/**
 * The seam between the agent's session with a SPIRE server and the authority that works
 * over it. The session (./session.ts's implementation, node attestation, key manager,
 * agent SVID rotation) owns trust bootstrap and the agent's own identity; the server
 * authority (./server-authority.ts: entry sync, bundles, workload SVID signing) only asks
 * it for clients and tells it about bundle changes, so neither knows the other's insides.
 */
import type * as grpc from '@grpc/grpc-js';

/** proto-loader clients for the SPIRE server APIs the agent calls, over mTLS with the current agent SVID. */
export interface ServerClients {
  /** spire.api.server.agent.v1.Agent */
  readonly agent: grpc.Client;
  /** spire.api.server.entry.v1.Entry */
  readonly entry: grpc.Client;
  /** spire.api.server.svid.v1.SVID */
  readonly svid: grpc.Client;
  /** spire.api.server.bundle.v1.Bundle */
  readonly bundle: grpc.Client;
}

export interface AgentSVIDStatus {
  /** The agent's SPIFFE ID as the server assigned it, e.g. spiffe://example.org/spire/agent/join_token/<token>. */
  readonly spiffeId: string;
  /** DER certificates, leaf first. */
  readonly chain: readonly Uint8Array[];
  /** Epoch ms. */
  readonly notAfter: number;
  /** Epoch ms of the last successful attestation or renewal. */
  readonly renewedAt: number;
}

export interface ServerSession {
  /**
   * Bootstraps trust, then resumes from the stored agent SVID or attests the node.
   * Resolves once the agent holds a valid SVID; rejects with a typed error a user can act on.
   */
  start(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
  /**
   * Clients built on the current agent SVID and the current trust bundle. Call it for every RPC
   * (do not keep the result): after a rotation or bundle change it returns new clients, and the
   * old ones stay usable until their calls finish.
   */
  clients(): ServerClients;
  /** The agent's identity now, for Debug GetInfo and status. */
  agentSVID(): AgentSVIDStatus;
  /**
   * The authority calls this when a sync brings a new bundle of the agent's own trust domain
   * (DER X.509 authorities), so the session verifies the server against it and stores it as
   * spire-agent does (the "bundle" of data_dir/agent-data.json).
   */
  updateBundle(x509Authorities: readonly Uint8Array[]): Promise<void>;
  /**
   * Called when the server refuses the agent for good (evicted or banned, as spire-agent
   * classifies a PermissionDenied/NotFound on renewal or sync). The session decides to
   * re-attest or stop; the listener is told so the agent can shut down with a clear error.
   */
  onFatal(listener: (err: Error) => void): () => void;
  /**
   * Optional (added after the first cut, so other implementations need not have it): the authority
   * passes any error from a server call here; a PermissionDenied with spire-agent's reasons makes
   * the session re-attest, or delete the stored SVID and report through onFatal. Others are ignored.
   */
  handleServerError?(err: unknown): Promise<void>;
  /**
   * Optional, like handleServerError: the own trust domain's X.509 authorities the server marked
   * tainted (types.Bundle x509_authorities[].tainted). If the agent SVID chains to one of them it is
   * rotated at the next check, as spire-agent's rotator does.
   */
  notifyTaintedAuthorities?(tainted: readonly Uint8Array[]): void;
  /**
   * Optional, like handleServerError: a call succeeded after calls had failed for want of an
   * answer (server down, hung or unreachable). A rotation of the agent SVID that is due and was
   * backing off is tried now, so the agent catches up within seconds of the server's return.
   */
  serverAnsweredAgain?(): void;
}
