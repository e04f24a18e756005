/**
 * The NodeAttestor plugin interface, shaped like spire-agent's (pkg/agent/plugin/nodeattestor):
 * a name plus `attest(stream)`, where the stream is the only way to talk to the server. The
 * plugin sends its payload once, then answers each challenge the server sends until the server
 * is satisfied. Every attestor SPIRE has (join_token, x509pop, tpm_devid, sshpop,
 * http_challenge, k8s_psat, cloud identity documents) fits: those without a challenge send
 * their payload and expect none; the others loop.
 */
export interface AttestationData {
  /** The attestor's name as the server knows it, e.g. "x509pop". */
  readonly type: string;
  /** Attestor-specific bytes; must be non-empty. */
  readonly payload: Uint8Array;
}

/** The server side of one attestation, as the plugin sees it. */
export interface AttestationStream {
  /** Sends the payload; resolves with the server's challenge, or undefined when the server has issued the SVID. */
  sendAttestationData(data: AttestationData): Promise<Uint8Array | undefined>;
  /** Answers the last challenge; resolves with the next challenge, or undefined when done. */
  sendChallengeResponse(response: Uint8Array): Promise<Uint8Array | undefined>;
}

export interface NodeAttestor {
  readonly name: string;
  /** Runs the plugin's side of the exchange; rejects with a typed error saying what to fix. */
  attest(stream: AttestationStream, signal: AbortSignal): Promise<void>;
  /** Releases what the plugin holds (listeners, devices). */
  close?(): Promise<void>;
  /**
   * What the operator can do about a refusal, given the server's message (gRPC details), when the
   * plugin knows its server side's rules; appended to the attestation error.
   */
  explainRefusal?(serverMessage: string): string | undefined;
}
