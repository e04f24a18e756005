/**
 * http_challenge: proves that the node answers HTTP at the DNS name it claims. The payload is
 * `{"hostname", "agentname", "port"}`; the server answers with `{"nonce"}`, the agent replies with a
 * newline (the protocol needs a non-empty answer) and the server then GETs
 * http://<hostname>:<port>/.well-known/spiffe/nodeattestor/http_challenge/<agentname>/challenge and
 * compares the body with its nonce (spire-agent v1.13.3's pkg/agent/plugin/nodeattestor/httpchallenge
 * and pkg/common/plugin/httpchallenge).
 *
 * The port is open only while one attestation runs: opened before the payload (which names it),
 * closed when the server has answered, refused, or the attestation was aborted. Nothing listens
 * between attestations. Whether the node may re-attest (server `tofu = false`) or only renew its
 * SVID is the server's call, returned with the SVID; the session acts on it.
 */
import type { Logger } from '../../../telemetry/logger.js';
import { F } from '../../../telemetry/names.js';
import { NodeAttestorError } from '../errors.js';
import type { AttestationStream, NodeAttestor } from '../types.js';
import { listenForChallenge, challengePath, type ChallengeListener } from './challenge-server.js';
import { HTTP_CHALLENGE, serverPolicyWarnings, type HttpChallengeConfig } from './config.js';
import { explainRefusal } from './refusals.js';

export { HTTP_CHALLENGE, parseHttpChallengeConfig, serverPolicyWarnings, type HttpChallengeConfig } from './config.js';
export { challengePath } from './challenge-server.js';

/** The challenge answer: any non-empty bytes; spire-agent sends a newline. */
const ANSWER = new Uint8Array([0x0a]);

export interface HttpChallengeDeps {
  readonly log: Logger;
  /** Interface to bind the listener to; every interface when absent. Tests use loopback. */
  readonly bindHost?: string;
}

/** The attestation payload, with Go's field order and names. */
export function httpChallengePayload(c: Pick<HttpChallengeConfig, 'hostname' | 'agentName'>, port: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ hostname: c.hostname, agentname: c.agentName, port }));
}

const challengeError = (msg: string, cause?: unknown) => new NodeAttestorError('node_attestor_challenge', `nodeattestor(${HTTP_CHALLENGE}): ${msg}`, { cause });

/** The nonce of the server's `{"nonce": "<base64url>"}`; Go matches the key case-insensitively. */
export function parseChallenge(challenge: Uint8Array): string {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(challenge).toString('utf8'));
  } catch (err) {
    throw challengeError(`unable to unmarshal challenge: ${(err as Error).message}`, err);
  }
  const entry = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? Object.entries(doc).find(([k]) => k.toLowerCase() === 'nonce') : undefined;
  const nonce: unknown = entry?.[1];
  // The nonce goes into an HTTP body the server reads 64 bytes of; SPIRE's is 44 base64url characters.
  if (typeof nonce !== 'string' || nonce === '' || nonce.length > 64 || /[\r\n]/.test(nonce)) {
    throw challengeError('the server\'s challenge has no usable "nonce" (a string of at most 64 characters); check that the server runs the http_challenge NodeAttestor');
  }
  return nonce;
}

export function createHttpChallengeAttestor(c: HttpChallengeConfig, deps: HttpChallengeDeps): NodeAttestor {
  for (const w of serverPolicyWarnings(c)) deps.log.warn(w);
  return new HttpChallengeAttestor(c, deps);
}

export class HttpChallengeAttestor implements NodeAttestor {
  readonly name = HTTP_CHALLENGE;
  /** The listener of the attestation in progress, so close() can release it too. */
  private active: ChallengeListener | undefined;
  /** The port of the last attestation, for explaining a refusal of it. */
  private lastPort: number | undefined;

  constructor(
    private readonly config: HttpChallengeConfig,
    private readonly deps: HttpChallengeDeps,
  ) {}

  async attest(stream: AttestationStream, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const c = this.config;
    const listener = await listenForChallenge({ port: c.port, agentName: c.agentName, log: this.deps.log, host: this.deps.bindHost });
    this.active = listener;
    this.lastPort = listener.port;
    // Every await below also ends on abort, so a stalled server cannot keep the port open.
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('attestation aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    const untilAborted = <T>(p: Promise<T>) => Promise.race([p, aborted]);
    try {
      signal.throwIfAborted();
      const port = c.advertisedPort || listener.port;
      this.deps.log.info(
        { hostname: c.hostname, agentname: c.agentName, port: listener.port, advertised_port: port, [F.path]: challengePath(c.agentName) },
        'Attesting with an HTTP challenge',
      );
      const challenge = await untilAborted(stream.sendAttestationData({ type: HTTP_CHALLENGE, payload: httpChallengePayload(c, port) }));
      if (challenge === undefined) return;
      listener.serve(parseChallenge(challenge));
      // The server fetches the nonce while this answer is pending, and replies once it has.
      const next = await untilAborted(stream.sendChallengeResponse(ANSWER));
      if (next !== undefined) throw new NodeAttestorError('node_attestor_unexpected_challenge', `nodeattestor(${HTTP_CHALLENGE}): server issued a second challenge; http_challenge answers one`);
    } finally {
      signal.removeEventListener('abort', onAbort as () => void);
      if (this.active === listener) this.active = undefined;
      await listener.close();
    }
  }

  async close(): Promise<void> {
    await this.active?.close();
  }

  explainRefusal(serverMessage: string): string | undefined {
    return explainRefusal(this.config, this.lastPort, serverMessage);
  }
}
