/**
 * plugin_data of the k8s workload attestor, with spire-agent's keys, defaults and
 * messages (doc/plugin_agent_workloadattestor_k8s.md). Everything that needs a
 * Kubernetes API server (namespace labels, sigstore, the experimental broker and
 * API-server cache) is accepted as a key but refused with a config error when it
 * would change behaviour, so a config never silently loses a check it asked for.
 */
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader } from '../../../config/plugin-data.js';

export const DEFAULT_SECURE_PORT = 10250;
export const DEFAULT_KUBELET_CA_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const DEFAULT_NODE_NAME_ENV = 'MY_NODE_NAME';
const DEFAULT_MAX_POLL_ATTEMPTS = 60;
const DEFAULT_POLL_RETRY_INTERVAL_MS = 500;
const DEFAULT_RELOAD_INTERVAL_MS = 60_000;

export type KubeletAuth =
  | { readonly kind: 'token'; readonly tokenPath: string }
  | { readonly kind: 'certificate'; readonly certificatePath: string; readonly privateKeyPath: string }
  | { readonly kind: 'anonymous' };

export interface KubeletConnectionConfig {
  /** false = the read-only port over plain HTTP on 127.0.0.1. */
  readonly secure: boolean;
  readonly port: number;
  /** '' when neither node_name nor the node_name_env variable gives one: then 127.0.0.1 is used. */
  readonly nodeName: string;
  readonly skipKubeletVerification: boolean;
  readonly kubeletCaPath: string;
  readonly auth: KubeletAuth;
}

export interface K8sAttestorConfig {
  readonly kubelet: KubeletConnectionConfig;
  readonly disableKubeletClient: boolean;
  readonly maxPollAttempts: number;
  readonly pollRetryIntervalMs: number;
  readonly reloadIntervalMs: number;
  readonly disableContainerSelectors: boolean;
  readonly useNewContainerLocator: boolean;
  readonly verboseContainerLocatorLogs: boolean;
}

/** Kubelet keys that make no sense with disable_kubelet_client, in spire-agent's order. */
const KUBELET_KEYS = [
  'kubelet_read_only_port',
  'kubelet_secure_port',
  'kubelet_ca_path',
  'skip_kubelet_verification',
  'token_path',
  'certificate_path',
  'private_key_path',
  'use_anonymous_authentication',
  'node_name_env',
  'node_name',
  'reload_interval',
] as const;

export function parseK8sConfig(
  plugin: PluginConfig,
  env: Record<string, string | undefined>,
  opts: { file?: string; text?: string } = {},
): K8sAttestorConfig {
  const r = new PluginDataReader(plugin, opts);
  const port = { min: 0, max: 65535 };
  const readOnlyPort = r.int('kubelet_read_only_port', 0, port);
  const securePort = r.int('kubelet_secure_port', 0, port);
  const skipKubeletVerification = r.bool('skip_kubelet_verification', false);
  const kubeletCaPath = r.string('kubelet_ca_path', '');
  const tokenPath = r.string('token_path', '');
  const certificatePath = r.string('certificate_path', '');
  const privateKeyPath = r.string('private_key_path', '');
  const useAnonymousAuthentication = r.bool('use_anonymous_authentication', false);
  const nodeNameEnv = r.string('node_name_env', '');
  const nodeNameKey = r.string('node_name', '');
  // spire-agent treats zero or negative values as "use the default"; so do we.
  const maxPollAttempts = r.int('max_poll_attempts', 0);
  const pollRetryIntervalMs = r.duration('poll_retry_interval', '0s');
  const reloadIntervalMs = r.duration('reload_interval', '0s');
  const disableContainerSelectors = r.bool('disable_container_selectors', false);
  const disableKubeletClient = r.bool('disable_kubelet_client', false);
  const useNewContainerLocator = r.bool('use_new_container_locator', true);
  const verboseContainerLocatorLogs = r.bool('verbose_container_locator_logs', false);

  if (readOnlyPort > 0 && securePort > 0) {
    r.problem('kubelet_read_only_port', 'cannot use both the read-only and secure port; set only one of kubelet_read_only_port and kubelet_secure_port');
  }
  if (certificatePath !== '' && privateKeyPath === '') {
    r.problem('private_key_path', 'the private key path is required with the certificate path');
  }
  if (privateKeyPath !== '' && certificatePath === '') {
    r.problem('certificate_path', 'the certificate path is required with the private key path');
  }
  if (disableKubeletClient) {
    for (const k of KUBELET_KEYS) if (r.has(k)) r.problem(k, `disable_kubelet_client cannot be used with ${k}`);
  }
  if (r.bool('enable_namespace_labels', false)) {
    r.problem(
      'enable_namespace_labels',
      'namespace labels (k8s:ns-label) need a Kubernetes API server client, which spiffe-agent does not have; remove the key or set it to false',
    );
  }
  for (const name of ['sigstore', 'experimental'] as const) {
    if (!isEmptyBlock(r.raw(name))) {
      r.problem(
        name,
        name === 'sigstore'
          ? 'image signature verification (sigstore) is not supported by spiffe-agent; remove the block (entries using k8s:image-signature selectors cannot match without it)'
          : 'the experimental options (api_server, broker) need a Kubernetes API server client, which spiffe-agent does not have; remove the block',
      );
    }
  }
  r.finish();

  const secure = readOnlyPort <= 0;
  const auth: KubeletAuth = useAnonymousAuthentication
    ? { kind: 'anonymous' }
    : certificatePath !== ''
      ? { kind: 'certificate', certificatePath, privateKeyPath }
      : { kind: 'token', tokenPath: tokenPath || DEFAULT_TOKEN_PATH };
  const nodeName = nodeNameKey || (env[nodeNameEnv || DEFAULT_NODE_NAME_ENV] ?? '');
  return Object.freeze({
    kubelet: Object.freeze({
      secure,
      port: secure ? securePort || DEFAULT_SECURE_PORT : readOnlyPort,
      nodeName,
      skipKubeletVerification,
      kubeletCaPath: kubeletCaPath || DEFAULT_KUBELET_CA_PATH,
      auth: Object.freeze(auth),
    }),
    disableKubeletClient,
    maxPollAttempts: maxPollAttempts > 0 ? maxPollAttempts : DEFAULT_MAX_POLL_ATTEMPTS,
    pollRetryIntervalMs: pollRetryIntervalMs > 0 ? pollRetryIntervalMs : DEFAULT_POLL_RETRY_INTERVAL_MS,
    reloadIntervalMs: reloadIntervalMs > 0 ? reloadIntervalMs : DEFAULT_RELOAD_INTERVAL_MS,
    disableContainerSelectors,
    useNewContainerLocator,
    verboseContainerLocatorLogs,
  });
}

/** An absent block, `{}`, or HCL's `[{}]`: asks for nothing. */
function isEmptyBlock(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (Array.isArray(v)) return v.every(isEmptyBlock);
  return typeof v === 'object' && Object.keys(v).length === 0;
}
