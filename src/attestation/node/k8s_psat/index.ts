/**
 * k8s_psat: attests a Kubernetes node with the projected service-account token of the agent's
 * pod. As spire-agent v1.13.3 (pkg/agent/plugin/nodeattestor/k8spsat, pkg/common/plugin/k8s):
 * the token file is read again at every attestation (the kubelet rotates it), sent untrimmed in
 * the JSON payload {"cluster": ..., "token": ...} as Go's json.Marshal writes it, and no
 * challenge follows. The server asks the apiserver's TokenReview about the token, then reads the
 * pod and node it is bound to; the agent ID is .../spire/agent/k8s_psat/<cluster>/<node uid>, and
 * the server marks such agents re-attestable, so the session re-attests instead of renewing.
 *
 * The token is never logged: the log carries the namespace, service account, pod and expiry from
 * its claims (not checked here; the apiserver checks them). The same claims explain a refusal.
 */
import type { Clock } from '../../../clock.js';
import { InputFileError, INPUT_LIMITS, readBoundedFile } from '../../../storage/bounded-file.js';
import type { Logger } from '../../../telemetry/logger.js';
import { NodeAttestorError } from '../errors.js';
import { goJsonObject } from '../go-json.js';
import type { AttestationStream, NodeAttestor } from '../types.js';
import { K8S_PSAT, type K8sPsatConfig } from './config.js';

export { DEFAULT_TOKEN_PATH, K8S_PSAT, parseK8sPsatConfig, type K8sPsatConfig } from './config.js';

/** The audience spire-server's k8s_psat expects unless its cluster block sets `audience`. */
export const SERVER_DEFAULT_AUDIENCE = 'spire-server';

/** What the agent can tell about a token without verifying it. */
export interface TokenSummary {
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly podName?: string;
  readonly audience?: readonly string[];
  /** Seconds since the epoch. */
  readonly exp?: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The claims of a projected token that help an operator; undefined when it is not a readable JWT. */
export function summarizeToken(token: string): TokenSummary | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.trim().split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const k8s = (claims['kubernetes.io'] ?? {}) as { namespace?: unknown; pod?: { name?: unknown }; serviceaccount?: { name?: unknown } };
    const aud = claims['aud'];
    return {
      namespace: str(k8s.namespace),
      serviceAccount: str(k8s.serviceaccount?.name),
      podName: str(k8s.pod?.name),
      audience: typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : undefined,
      exp: typeof claims['exp'] === 'number' ? claims['exp'] : undefined,
    };
  } catch {
    return undefined;
  }
}

const ioError = (msg: string, cause?: unknown) => new NodeAttestorError('node_attestor_io', `nodeattestor(k8s_psat): ${msg}`, { cause });

export class K8sPsatAttestor implements NodeAttestor {
  readonly name = K8S_PSAT;
  /** Claims of the token last sent, to explain the server's refusal of it. */
  private last: TokenSummary | undefined;

  constructor(
    private readonly config: K8sPsatConfig,
    private readonly deps: { log: Logger; clock: Clock },
  ) {}

  /** Reads the token (now, not at start: the kubelet replaces it as it nears expiry). */
  async readToken(): Promise<string> {
    const path = this.config.tokenPath;
    let token: string;
    try {
      token = await readBoundedFile(path, { maxBytes: INPUT_LIMITS.token, what: 'k8s_psat token_path' });
    } catch (err) {
      const hint =
        err instanceof InputFileError && err.code === 'input_not_found'
          ? `: mount the pod's projected service-account token there (a serviceAccountToken volume with audience "${SERVER_DEFAULT_AUDIENCE}") or set token_path`
          : '';
      throw ioError(`unable to load token from ${path}: ${(err as Error).message}${hint}`, err);
    }
    if (token.length === 0) throw ioError(`unable to load token from ${path}: the file is empty; the kubelet writes the projected token there, so check the pod's serviceAccountToken volume`);
    return token;
  }

  async payload(): Promise<Uint8Array> {
    const token = await this.readToken();
    this.last = summarizeToken(token);
    const s = this.last;
    this.deps.log.info(
      { cluster: this.config.cluster, token_path: this.config.tokenPath, namespace: s?.namespace, service_account: s?.serviceAccount, pod_name: s?.podName, token_expires: s?.exp === undefined ? undefined : new Date(s.exp * 1000).toISOString() },
      'Attesting with projected service account token',
    );
    return new Uint8Array(Buffer.from(goJsonObject([['cluster', this.config.cluster], ['token', token]]), 'utf8'));
  }

  async attest(stream: AttestationStream): Promise<void> {
    const payload = await this.payload();
    const challenge = await stream.sendAttestationData({ type: K8S_PSAT, payload });
    if (challenge !== undefined) throw new NodeAttestorError('node_attestor_unexpected_challenge', 'nodeattestor(k8s_psat): server sent a challenge; k8s_psat expects none');
  }

  explainRefusal(said: string): string | undefined {
    return explainK8sPsatRefusal(this.config, this.last, this.deps.clock.now(), said);
  }
}

/**
 * What spire-server v1.13.3's k8s_psat (pkg/server/plugin/nodeattestor/k8spsat) means by each
 * refusal. The apiserver's TokenReview either fails with its reasons ("unable to validate token
 * with TokenReview API: ... [invalid bearer token, service account token has expired]") or says
 * only "not authenticated"; the token's own claims (as last sent) then name the likely cause.
 */
export function explainK8sPsatRefusal(c: K8sPsatConfig, t: TokenSummary | undefined, nowMs: number, said: string): string | undefined {
  if (/not configured for cluster/.test(said)) {
    return `the server's k8s_psat has no cluster "${c.cluster}": set cluster to a name under its clusters = { ... }, or add this cluster there`;
  }
  if (/token not authenticated according to TokenReview API|unable to validate token with TokenReview API/.test(said)) {
    if (/has expired/.test(said) || (t?.exp !== undefined && t.exp * 1000 <= nowMs)) {
      if (t?.exp === undefined) return `the token in ${c.tokenPath} has expired: use the kubelet-rotated projected token (a serviceAccountToken volume), not a copy`;
      return `the token in ${c.tokenPath} expired at ${new Date(t.exp * 1000).toISOString()}: use the kubelet-rotated projected token (a serviceAccountToken volume), not a copy`;
    }
    if (/audience/i.test(said) || (t?.audience !== undefined && !t.audience.includes(SERVER_DEFAULT_AUDIENCE))) {
      if (t?.audience === undefined) return `the token's audience is not one the server expects ("${SERVER_DEFAULT_AUDIENCE}" unless its cluster block sets audience)`;
      return `the token's audience is ${JSON.stringify(t.audience)}; the server expects "${SERVER_DEFAULT_AUDIENCE}" unless its cluster block sets audience: set audience: ${SERVER_DEFAULT_AUDIENCE} on the serviceAccountToken volume`;
    }
    return 'the apiserver the server asks does not accept the token: it expired, its audience is not the one the server expects, its pod was deleted, or the server\'s kube_config_file points at another cluster';
  }
  if (/is not an allowed service account/.test(said)) {
    const sa = t?.namespace !== undefined && t.serviceAccount !== undefined ? `"${t.namespace}:${t.serviceAccount}"` : 'the agent\'s service account';
    return `add ${sa} to service_account_allow_list of cluster "${c.cluster}" in the server's k8s_psat, or run the agent under a service account listed there`;
  }
  if (/fail to get (pod|node) from k8s API server/.test(said)) {
    return 'the server could not read the pod or node the token is bound to: check the RBAC of the server\'s kube_config_file identity (get on pods and nodes)';
  }
  return undefined;
}

export function createK8sPsatAttestor(config: K8sPsatConfig, deps: { log: Logger; clock: Clock }): NodeAttestor {
  return new K8sPsatAttestor(config, deps);
}
