/**
 * The `agent {}` keys that only mean something with a SPIRE server (server_address and trust
 * bootstrap, node attestation's join token, rebootstrap). They are read here with the rest of
 * the block, but checked only once ./load.ts knows the mode: with server_address they must
 * make sense together (spire-agent's own rules and wording); without it, setting any of them is
 * an error, because the embedded authority would silently ignore it.
 */
import { AGENT_DEFAULTS } from './defaults.js';
import type { ObjectReader } from './reader.js';
import type { ServerSettings } from './types.js';

/** Server-only keys as written in agent.conf, in the order problems are reported. */
export const SERVER_ONLY_KEYS = [
  'server_port',
  'join_token',
  'join_token_file',
  'trust_bundle_path',
  'trust_bundle_url',
  'trust_bundle_unix_socket',
  'trust_bundle_format',
  'trust_bundle_spiffe_workload_api',
  'insecure_bootstrap',
  'rebootstrap_mode',
  'rebootstrap_delay',
  'retry_bootstrap',
] as const;

export interface ServerKeys {
  /** Undefined serverAddress = embedded mode. */
  readonly settings: Omit<ServerSettings, 'serverAddress'> & { readonly serverAddress: string | undefined };
  /** Server-only keys present in the file (or given by flags). */
  readonly present: readonly string[];
  /** Problems that apply only in server mode: [dotted key, message]. */
  readonly problems: ReadonlyArray<readonly [string, string]>;
}

type Sync = Pick<ServerSettings, 'syncIntervalMs' | 'useSyncAuthorizedEntries' | 'jwtSvidCacheHitTimeoutMs' | 'requirePqKem'>;

export function readServerSettings(r: ObjectReader, sync: Sync): ServerKeys {
  const settings = {
    serverAddress: r.optionalString('server_address'),
    serverPort: r.int('server_port', AGENT_DEFAULTS.server_port, { min: 1, max: 65535 }),
    joinToken: r.optionalString('join_token'),
    joinTokenFile: r.optionalString('join_token_file'),
    trustBundlePath: r.optionalString('trust_bundle_path'),
    trustBundleUrl: r.optionalString('trust_bundle_url'),
    trustBundleUnixSocket: r.optionalString('trust_bundle_unix_socket'),
    trustBundleFormat: r.enum('trust_bundle_format', ['pem', 'spiffe'] as const, AGENT_DEFAULTS.trust_bundle_format as 'pem'),
    trustBundleSpiffeWorkloadApi: r.optionalString('trust_bundle_spiffe_workload_api'),
    insecureBootstrap: r.bool('insecure_bootstrap', false),
    rebootstrapMode: r.enum('rebootstrap_mode', ['never', 'auto', 'always'] as const, AGENT_DEFAULTS.rebootstrap_mode as 'never'),
    rebootstrapDelayMs: r.duration('rebootstrap_delay', AGENT_DEFAULTS.rebootstrap_delay),
    retryBootstrap: r.bool('retry_bootstrap', AGENT_DEFAULTS.retry_bootstrap),
    ...sync,
  };
  const problems: Array<readonly [string, string]> = [];
  // spire-agent's rule: rebootstrapping always retries, so setting retry_bootstrap with it is an error.
  if (settings.rebootstrapMode !== 'never' && r.has('retry_bootstrap')) problems.push([r.key('retry_bootstrap'), 'you can not set retry_bootstrap when using reboostrap_mode']);
  checkServerKeys(settings, (key, msg) => problems.push([r.key(key), msg]));
  return {
    settings: Object.freeze(settings),
    present: SERVER_ONLY_KEYS.filter((k) => r.has(k)),
    problems,
  };
}

/** The relations spire-agent enforces between its server keys, with its wording where users know it. */
function checkServerKeys(a: ServerKeys['settings'], add: (key: string, msg: string) => void): void {
  // A zero interval would make the sync loop spin; spire-agent has no use for one either.
  if (a.syncIntervalMs <= 0) add('experimental.sync_interval', 'sync_interval must be longer than 0s');
  if (a.joinToken !== undefined && a.joinTokenFile !== undefined) {
    add('join_token_file', 'only one of join_token or join_token_file can be specified, not both');
  }
  if (a.rebootstrapMode !== 'never' && a.insecureBootstrap) {
    add('rebootstrap_mode', 'insecure_bootstrap option can not be used with rebootstrapping');
  }
  const wl = a.trustBundleSpiffeWorkloadApi;
  if (wl !== undefined) {
    if (a.insecureBootstrap) add('trust_bundle_spiffe_workload_api', 'only one of insecure_bootstrap or trust_bundle_spiffe_workload_api can be specified, not both');
    if (a.trustBundleUrl !== undefined) add('trust_bundle_spiffe_workload_api', 'only one of trust_bundle_url or trust_bundle_spiffe_workload_api can be specified, not both');
    if (a.trustBundlePath !== undefined) add('trust_bundle_spiffe_workload_api', 'only one of trust_bundle_path or trust_bundle_spiffe_workload_api can be specified, not both');
    if (a.trustBundleUnixSocket !== undefined) add('trust_bundle_unix_socket', 'trust_bundle_unix_socket can not be used with trust_bundle_spiffe_workload_api');
  }
  const set = [a.insecureBootstrap, a.trustBundleUrl !== undefined, a.trustBundlePath !== undefined].filter(Boolean).length;
  if (set > 1) add('insecure_bootstrap', 'only one of insecure_bootstrap, trust_bundle_url, or trust_bundle_path can be specified');
  if (set === 0 && wl === undefined) {
    add('trust_bundle_path', 'trust_bundle_path, trust_bundle_url, or trust_bundle_spiffe_workload_api must be configured unless insecure_bootstrap is set');
  }
  if (a.trustBundleUnixSocket !== undefined && a.trustBundleUrl === undefined) {
    add('trust_bundle_unix_socket', 'if trust_bundle_unix_socket is specified, so must be trust_bundle_url');
  }
  if (a.trustBundleUrl !== undefined) checkTrustBundleUrl(a.trustBundleUrl, a.trustBundleUnixSocket !== undefined, add);
}

function checkTrustBundleUrl(text: string, overUnixSocket: boolean, add: (key: string, msg: string) => void): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    add('trust_bundle_url', `unable to parse trust bundle URL ${JSON.stringify(text)}`);
    return;
  }
  if (!overUnixSocket) {
    if (url.protocol !== 'https:') add('trust_bundle_url', 'trust bundle URL must start with https://');
    return;
  }
  if (url.protocol !== 'http:') add('trust_bundle_url', 'trust bundle URL must start with http:// when used with trust bundle unix socket');
  for (const k of url.searchParams.keys()) {
    if (k.startsWith('spiffe-') || k.startsWith('spire-')) add('trust_bundle_url', `trust_bundle_url query params can not start with ${k.startsWith('spiffe-') ? 'spiffe-' : 'spire-'}`);
  }
}
