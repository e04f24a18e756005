/**
 * The validated, frozen shape of agent.conf. Loaded by ./load.ts from HCL or JSON;
 * key names are spire-agent's (snake_case in the file, camelCase here).
 * Durations are milliseconds. Sizes are counts. Paths are as written (not resolved).
 */
export type { KeyType } from '../crypto/keys.js';
import type { KeyType } from '../crypto/keys.js';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
/** log_level as logrus reads it: the levels above plus fatal and panic (which silence all but the audit trail). */
export type ConfigLogLevel = LogLevel | 'fatal' | 'panic';
export type LogFormat = 'text' | 'json';

export interface AgentSection {
  trustDomain: string;
  dataDir: string;
  socketPath: string;
  adminSocketPath: string | undefined;
  logLevel: ConfigLogLevel;
  logFormat: LogFormat;
  logFile: string | undefined;
  /** log_source_location: each line names the source file, line and function that wrote it. */
  logSourceLocation?: boolean;
  /** Selector types (e.g. "unix") or type:key prefixes (e.g. "unix:uid") whose values audit records show in full. */
  logSelectors: readonly string[];
  workloadX509SvidKeyType: KeyType;
  x509SvidCacheMaxSize: number;
  jwtSvidCacheMaxSize: number;
  /** spire-agent's availability_target: rotate when less than this is left (0 = half-life rule). */
  availabilityTargetMs: number;
  allowUnauthenticatedVerifiers: boolean;
  allowedForeignJwtClaims: readonly string[];
  /** Live re-attestation interval for open streams (spiffe-agent extension; 0 = off). */
  reattestIntervalMs: number;
  /** How long SIGTERM lets open connections finish before they are closed (spiffe-agent extension). */
  shutdownGracePeriodMs: number;
  disableSpiffeCsi: boolean;
  sdsDefaultSvidName: string;
  sdsDefaultBundleName: string;
  sdsDefaultAllBundlesName: string;
  sdsDisableSpiffeCertValidation: boolean;
  // --- spire-agent keys added after the first cut of this type; optional so hand-built fixtures still compile ---
  /** SPIFFE IDs allowed to use the Delegated Identity API on the admin socket. */
  authorizedDelegates?: readonly string[];
  disableWorkloadApi?: boolean;
  disableSdsApi?: boolean;
}

/**
 * How to reach and trust a SPIRE server: the `agent {}` keys that exist only in server mode
 * (server_address set). Field names are the camelCase of spire-agent's keys.
 */
export interface ServerSettings {
  serverAddress: string;
  serverPort: number;
  joinToken: string | undefined;
  joinTokenFile: string | undefined;
  trustBundlePath: string | undefined;
  trustBundleUrl: string | undefined;
  trustBundleUnixSocket: string | undefined;
  trustBundleFormat: 'pem' | 'spiffe';
  /** Accepted as spire-agent v1.15 defines it; v1.13.3 has no such key. */
  trustBundleSpiffeWorkloadApi: string | undefined;
  insecureBootstrap: boolean;
  rebootstrapMode: 'never' | 'auto' | 'always';
  rebootstrapDelayMs: number;
  retryBootstrap: boolean;
  /** experimental.sync_interval: entry/bundle sync period (spire-agent: 5s). */
  syncIntervalMs: number;
  /** experimental.use_sync_authorized_entries (v1.13.3 default true); false = GetAuthorizedEntries. */
  useSyncAuthorizedEntries: boolean;
  /**
   * experimental.jwt_svid_cache_hit_timeout as later spire-agents define it: how long to wait for the
   * server before answering with a still-valid cached JWT-SVID. Undefined = the 30 s RPC budget (v1.13.3).
   */
  jwtSvidCacheHitTimeoutMs: number | undefined;
  /** experimental.require_pq_kem: TLS to the server offers only X25519MLKEM768 (checked supported at load). */
  requirePqKem: boolean;
}

export interface PluginConfig {
  /** NodeAttestor, WorkloadAttestor, KeyManager, SVIDStore */
  type: string;
  /** e.g. "unix", "join_token", "disk" */
  name: string;
  enabled: boolean;
  /** plugin_data as parsed (plain object); each plugin validates its own. */
  data: Record<string, unknown>;
  /** plugin_data_file, if given, already read and parsed into `data`. */
  dataFile: string | undefined;
  /** Where this plugin block sits, for error messages: "plugins.WorkloadAttestor.unix". */
  path: string;
}

export interface EmbeddedAuthorityConfig {
  /** Registration entries in `spire-server entry create -data` JSON shape. */
  entriesFile: string | undefined;
  caKeyType: KeyType;
  caTtlMs: number;
  defaultX509SvidTtlMs: number;
  defaultJwtSvidTtlMs: number;
  jwtIssuer: string | undefined;
  jwtKeyType: KeyType;
  caSubject: { country: string[]; organization: string[]; commonName: string };
  /** trust domain name -> path of a SPIFFE bundle (JSON) or PEM file */
  federatedBundles: Readonly<Record<string, string>>;
}

export interface HealthChecksConfig {
  listenerEnabled: boolean;
  bindAddress: string;
  bindPort: number;
  livePath: string;
  readyPath: string;
}

export interface TelemetryConfig {
  /** Serve /metrics on host:port; absent: no sink, metrics are not collected. */
  prometheus?: { host: string; port: number };
  /** First part of every spire-agent metric name (go-metrics' service name). */
  metricPrefix: string;
  /** A `host` label with the machine's hostname on every spire-agent metric (go-metrics' EnableHostnameLabel). */
  enableHostnameLabel: boolean;
  /** go-metrics filters: the longest matching prefix of the dotted key (prefix included) decides; none: allowed. */
  allowedPrefixes: readonly string[];
  blockedPrefixes: readonly string[];
}

interface AgentConfigBase {
  /** Absolute path of the file it came from ('<flags>' when built from flags only). */
  source: string;
  agent: AgentSection;
  plugins: readonly PluginConfig[];
  healthChecks: HealthChecksConfig;
  telemetry: TelemetryConfig;
}

/** No server_address: SVIDs come from the embedded CA; server keys are refused. */
export interface EmbeddedModeConfig extends AgentConfigBase {
  mode: 'embedded';
  embeddedAuthority: EmbeddedAuthorityConfig;
}

/** server_address set: the agent joins a SPIRE server; an embedded_authority block is refused. */
export interface ServerModeConfig extends AgentConfigBase {
  mode: 'server';
  server: ServerSettings;
}

export type AgentConfig = EmbeddedModeConfig | ServerModeConfig;
