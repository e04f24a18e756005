/**
 * Every default of agent.conf, in one place. Values follow spire-agent where it has the key
 * (cmd/spire-agent/cli/run), so that a spire-agent config means the same thing here.
 * Durations are Go duration strings, parsed with the same code as user input.
 */
export const DEFAULT_CONFIG_PATH = 'conf/agent/agent.conf';

export const AGENT_DEFAULTS = Object.freeze({
  data_dir: '.',
  socket_path: '/tmp/spire-agent/public/api.sock',
  log_level: 'INFO',
  log_format: 'text',
  log_selectors: Object.freeze([
    'unix:uid',
    'unix:gid',
    'unix:user',
    'unix:group',
    'unix:path',
    'unix:sha256',
    'k8s:ns',
    'k8s:sa',
    'k8s:pod-name',
    'systemd:id',
    'docker:image_id',
  ]),
  workload_x509_svid_key_type: 'ec-p256',
  x509_svid_cache_max_size: 1000,
  jwt_svid_cache_max_size: 1000,
  /** 0 = rotate at half-life, spire-agent's behaviour when availability_target is unset. */
  availability_target: '0s',
  reattest_interval: '30s',
  shutdown_grace_period: '5s',
  sync_interval: '5s',
  use_sync_authorized_entries: true,
  server_port: 8081,
  trust_bundle_format: 'pem',
  rebootstrap_mode: 'never',
  rebootstrap_delay: '10m',
  // spire-agent v1.13.3 retries unless retry_bootstrap = false (its run.go sets RetryBootstrap = true).
  retry_bootstrap: true,
  sds: Object.freeze({
    default_svid_name: 'default',
    default_bundle_name: 'ROOTCA',
    default_all_bundles_name: 'ALL',
    disable_spiffe_cert_validation: false,
  }),
});

export const EMBEDDED_AUTHORITY_DEFAULTS = Object.freeze({
  ca_key_type: 'ec-p256',
  ca_ttl: '24h',
  default_x509_svid_ttl: '1h',
  default_jwt_svid_ttl: '5m',
  jwt_key_type: 'ec-p256',
  ca_subject: Object.freeze({ country: Object.freeze(['US']), organization: Object.freeze(['SPIFFE']), common_name: '' }),
});

export const HEALTH_CHECKS_DEFAULTS = Object.freeze({
  listener_enabled: false,
  bind_address: 'localhost',
  bind_port: 80,
  live_path: '/live',
  ready_path: '/ready',
});

/** spire-agent refuses an availability_target below this. */
export const MIN_AVAILABILITY_TARGET = '24h';

/** spire-agent's telemetry defaults (pkg/common/telemetry/metrics.go, prometheus.go). */
export const TELEMETRY_DEFAULTS = Object.freeze({
  /** go-metrics' service name for spire-agent; names come out as spire_agent_<key>. */
  metric_prefix: 'spire_agent',
  enable_hostname_label: true,
  prometheus_host: 'localhost',
});
