/**
 * The `agent { ... }` block: every key spire-agent knows (doc/spire_agent.md, cmd/spire-agent/cli/run)
 * plus our extensions (log_selectors, reattest_interval, shutdown_grace_period, and sync_interval / use_sync_authorized_entries
 * also accepted outside `experimental`). A key spire-agent knows either works as it documents it or is
 * refused with the reason: none is accepted and then ignored.
 * The keys that only mean something with a SPIRE server are read by ./server-section.ts.
 */
import { parseGoDuration } from '../duration.js';
import { pqKemUnsupportedReason } from '../net/pq-kem.js';
import { AGENT_DEFAULTS, MIN_AVAILABILITY_TARGET } from './defaults.js';
import type { ObjectReader } from './reader.js';
import { parseTrustDomainName } from './trust-domain.js';
import { readServerSettings, type ServerKeys } from './server-section.js';
import type { AgentSection, ConfigLogLevel, KeyType, LogLevel } from './types.js';

export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096'];
// fatal and panic are logrus's levels too: spire-agent then logs only what would end it (here: nothing but the audit trail).
const LOG_LEVELS: readonly ConfigLogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'panic'];

function readExperimental(r: ObjectReader | undefined) {
  const out = {
    syncIntervalMs: undefined as number | undefined,
    useSyncAuthorizedEntries: undefined as boolean | undefined,
    jwtSvidCacheHitTimeoutMs: undefined as number | undefined,
    requirePqKem: false,
  };
  if (!r) return out;
  out.syncIntervalMs = r.optionalDuration('sync_interval');
  out.useSyncAuthorizedEntries = r.optionalBool('use_sync_authorized_entries');
  const hit = r.optionalDuration('jwt_svid_cache_hit_timeout');
  if (hit !== undefined && (hit < 5_000 || hit >= 30_000)) {
    r.problems.add(r.key('jwt_svid_cache_hit_timeout'), 'must be at least 5s and less than 30s');
  }
  out.jwtSvidCacheHitTimeoutMs = hit;
  // spire-agent v1.13.3's wording on Linux, where these Windows keys do not exist.
  if (r.has('named_pipe_name')) r.problems.add(r.key('named_pipe_name'), 'named_pipe_name is not supported in this platform; please use socket_path instead');
  if (r.has('admin_named_pipe_name')) {
    r.problems.add(r.key('admin_named_pipe_name'), 'admin_named_pipe_name is not supported in this platform; please use admin_socket_path instead');
  }
  r.ignore('named_pipe_name', 'admin_named_pipe_name');
  out.requirePqKem = r.bool('require_pq_kem', false);
  if (out.requirePqKem) {
    const why = pqKemUnsupportedReason();
    if (why) r.problems.add(r.key('require_pq_kem'), why);
  }
  // v1.13.3 knows one flag, which only its own tests read; any other is its "unknown feature flag" error.
  const unknown = r.stringList('feature_flags', []).filter((f) => !KNOWN_FEATURE_FLAGS.includes(f));
  if (unknown.length > 0) r.problems.add(r.key('feature_flags'), `error loading feature flags: unknown feature flag(s): [${unknown.join(' ')}]`);
  // Neither exists in v1.13.3 (it skips unknown experimental keys); refused here so nobody believes them on.
  if (r.has('ratelimit')) {
    r.problems.add(r.key('ratelimit'), 'Workload API rate limiting (spire-agent v1.15) is not implemented; remove the ratelimit block (per-uid connection and call limits always apply, see the README)');
  }
  if (r.has('broker')) r.problems.add(r.key('broker'), 'the SPIFFE Broker API is not implemented; remove the broker block');
  r.ignore('ratelimit', 'broker');
  r.finish();
  return out;
}

const KNOWN_FEATURE_FLAGS: readonly string[] = ['i_am_a_test_flag'];

export interface AgentSectionResult {
  readonly agent: AgentSection;
  /** The server-only keys, read and checked against each other; load.ts decides whether the mode allows them. */
  readonly server: ServerKeys;
}

export function readAgentSection(r: ObjectReader): AgentSectionResult {
  const problems = r.problems;
  let trustDomain = '';
  const tdText = r.optionalString('trust_domain');
  if (tdText === undefined) problems.add(r.key('trust_domain'), 'trust_domain must be configured');
  else {
    const td = parseTrustDomainName(tdText);
    if ('error' in td) problems.add(r.key('trust_domain'), `could not parse trust_domain: ${td.error}`);
    else trustDomain = td.name;
  }

  const exp = readExperimental(r.block('experimental'));
  const syncTop = r.optionalDuration('sync_interval');
  const useSyncTop = r.optionalBool('use_sync_authorized_entries');
  if (syncTop !== undefined && exp.syncIntervalMs !== undefined && syncTop !== exp.syncIntervalMs) {
    problems.add(r.key('sync_interval'), 'set both here and in experimental.sync_interval with different values; keep one');
  }

  const sds = r.block('sds');
  const D = AGENT_DEFAULTS.sds;
  const section: AgentSection = {
    trustDomain,
    dataDir: r.string('data_dir', AGENT_DEFAULTS.data_dir),
    socketPath: r.string('socket_path', AGENT_DEFAULTS.socket_path),
    adminSocketPath: r.optionalString('admin_socket_path'),
    logLevel: r.enum('log_level', LOG_LEVELS, AGENT_DEFAULTS.log_level.toLowerCase() as LogLevel, {
      caseInsensitive: true,
      aliases: { warning: 'warn' },
    }),
    logFormat: r.enum('log_format', ['text', 'json'] as const, AGENT_DEFAULTS.log_format as 'text', { caseInsensitive: true }),
    logFile: r.optionalString('log_file'),
    logSelectors: r.stringList('log_selectors', AGENT_DEFAULTS.log_selectors),
    workloadX509SvidKeyType: r.enum('workload_x509_svid_key_type', KEY_TYPES, AGENT_DEFAULTS.workload_x509_svid_key_type as KeyType),
    x509SvidCacheMaxSize: r.int('x509_svid_cache_max_size', AGENT_DEFAULTS.x509_svid_cache_max_size, { min: 0 }),
    jwtSvidCacheMaxSize: r.int('jwt_svid_cache_max_size', AGENT_DEFAULTS.jwt_svid_cache_max_size, { min: 0 }),
    availabilityTargetMs: r.duration('availability_target', AGENT_DEFAULTS.availability_target),
    allowUnauthenticatedVerifiers: r.bool('allow_unauthenticated_verifiers', false),
    allowedForeignJwtClaims: r.stringList('allowed_foreign_jwt_claims', []),
    reattestIntervalMs: r.duration('reattest_interval', AGENT_DEFAULTS.reattest_interval),
    shutdownGracePeriodMs: r.duration('shutdown_grace_period', AGENT_DEFAULTS.shutdown_grace_period),
    disableSpiffeCsi: r.bool('disable_spiffe_csi', false),
    sdsDefaultSvidName: sds?.string('default_svid_name', D.default_svid_name) ?? D.default_svid_name,
    sdsDefaultBundleName: sds?.string('default_bundle_name', D.default_bundle_name) ?? D.default_bundle_name,
    sdsDefaultAllBundlesName: sds?.string('default_all_bundles_name', D.default_all_bundles_name) ?? D.default_all_bundles_name,
    sdsDisableSpiffeCertValidation: sds?.bool('disable_spiffe_cert_validation', D.disable_spiffe_cert_validation) ?? D.disable_spiffe_cert_validation,
    authorizedDelegates: r.stringList('authorized_delegates', []),
    disableWorkloadApi: r.bool('disable_workload_api', false),
    disableSdsApi: r.bool('disable_sds_api', false),
  };
  sds?.finish();
  const server = readServerSettings(r, {
    syncIntervalMs: syncTop ?? exp.syncIntervalMs ?? parseGoDuration(AGENT_DEFAULTS.sync_interval)!,
    useSyncAuthorizedEntries: useSyncTop ?? exp.useSyncAuthorizedEntries ?? AGENT_DEFAULTS.use_sync_authorized_entries,
    jwtSvidCacheHitTimeoutMs: exp.jwtSvidCacheHitTimeoutMs,
    requirePqKem: exp.requirePqKem,
  });
  const logSourceLocation = r.bool('log_source_location', false);
  // spire-agent serves Go's pprof; Node's profilers are started from the command line instead.
  if (r.bool('profiling_enabled', false)) {
    r.problems.add(r.key('profiling_enabled'), 'Go pprof profiling is not available in spiffe-agent; profile it with Node.js flags instead (NODE_OPTIONS="--cpu-prof --heap-prof" or --inspect), and remove profiling_enabled');
  }
  // Without profiling_enabled spire-agent reads none of these either.
  r.int('profiling_port', 0, { min: 0, max: 65535 });
  r.int('profiling_freq', 0, { min: 0 });
  r.stringList('profiling_names', []);
  r.finish();
  crossCheck(section, r);
  const agent = Object.freeze({
    ...section,
    logSourceLocation,
    logSelectors: Object.freeze(section.logSelectors),
    allowedForeignJwtClaims: Object.freeze(section.allowedForeignJwtClaims),
    authorizedDelegates: Object.freeze(section.authorizedDelegates ?? []),
  });
  return { agent, server };
}

/** The relations between keys that spire-agent enforces, with its wording where users know it. */
function crossCheck(a: AgentSection, r: ObjectReader): void {
  const add = (key: string, msg: string) => r.problems.add(r.key(key), msg);
  if (a.availabilityTargetMs !== 0 && a.availabilityTargetMs < parseGoDuration(MIN_AVAILABILITY_TARGET)!) {
    add('availability_target', `availability_target must be at least ${MIN_AVAILABILITY_TARGET}`);
  }
  if (a.adminSocketPath !== undefined && !a.disableWorkloadApi) {
    const dir = a.socketPath.slice(0, a.socketPath.lastIndexOf('/') + 1);
    if (dir && a.adminSocketPath.startsWith(dir)) {
      add('admin_socket_path', 'admin socket cannot be in the same directory or a subdirectory as that containing the Workload API socket');
    }
  }
  for (const d of a.authorizedDelegates ?? []) {
    if (a.trustDomain && !d.startsWith(`spiffe://${a.trustDomain}/`)) {
      add('authorized_delegates', `${JSON.stringify(d)} is not a SPIFFE ID in trust domain "${a.trustDomain}"`);
    }
  }
}
