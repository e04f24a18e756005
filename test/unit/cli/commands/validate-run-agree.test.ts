/**
 * `validate` and `run` agree on every key spire-agent documents. Each case sets one key of SPIRE
 * v1.13.3's conf/agent/agent_full.conf (key names from that file; the values are ours) on a config
 * that is valid as it stands, and feeds it to both:
 *   - `spiffe-agent validate` (the CLI command, host probe answered by a fake), and
 *   - the run path up to serving: loadConfig as `run` calls it, then openRunPlugins, which is what
 *     Agent.start makes of plugins {} (the same function, not a copy).
 * Both must accept, or both refuse with the same reason; a refusal names the file and, for a key
 * in the file, its line. The expected verdict of each key is pinned too, so a key that silently
 * changes from refused to accepted (or back) fails here.
 * Not covered: files read after node attestation starts (trust_bundle_path, retried as a bootstrap
 * failure by both) and embedded-mode input files (validate-files.test.ts).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRunPlugins } from '../../../../src/agent/run-plugins.js';
import { validate } from '../../../../src/cli/commands/validate.js';
import { systemClock } from '../../../../src/clock.js';
import { loadConfig } from '../../../../src/config/load.js';
import { pqKemUnsupportedReason } from '../../../../src/net/pq-kem.js';
import { SpiffeAgentError } from '../../../../src/errors.js';
import { ProcReader } from '../../../../src/proc/proc-reader.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { probeFor, HOSTS } from '../../../helpers/platform-probe.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'validate-run-'));
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'unix.hcl'), 'discover_workload_path = false\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

interface Parts {
  /** Lines inside agent {}; replaces the base's bootstrap lines when `bootstrap` is given. */
  agent?: string;
  bootstrap?: string;
  experimental?: string;
  /** Replaces the NodeAttestor block (and drops the base's join_token). */
  nodeAttestor?: string;
  keyManager?: string;
  /** Blocks added inside plugins {}. */
  plugins?: string;
  /** Replaces WorkloadAttestor "unix". */
  workloadAttestor?: string;
  /** Top-level blocks (telemetry, health_checks). */
  top?: string;
}

const D = () => dir;
function conf(p: Parts): string {
  const bootstrap = p.bootstrap ?? 'insecure_bootstrap = true';
  const token = p.nodeAttestor ? '' : '  join_token = "a-join-token"\n';
  return (
    `agent {\n  trust_domain = "example.org"\n  data_dir = "${D()}/data"\n  socket_path = "${D()}/public/api.sock"\n` +
    `  server_address = "127.0.0.1"\n  server_port = "8081"\n  ${bootstrap}\n${token}` +
    (p.agent ? `  ${p.agent}\n` : '') +
    (p.experimental ? `  experimental {\n    ${p.experimental}\n  }\n` : '') +
    `}\nplugins {\n  ${p.nodeAttestor ?? 'NodeAttestor "join_token" {\n    plugin_data {}\n  }'}\n` +
    `  ${p.keyManager ?? 'KeyManager "memory" {\n    plugin_data {}\n  }'}\n` +
    `  ${p.workloadAttestor ?? 'WorkloadAttestor "unix" {\n    plugin_data {}\n  }'}\n` +
    (p.plugins ? `  ${p.plugins}\n` : '') +
    `}\n${p.top ?? ''}`
  );
}

type Verdict = 'accept' | 'refuse';
/** [agent_full.conf key, the config around it, expected verdict, (refusals) a words of the reason]. */
const CASES: [string, () => Parts, Verdict, RegExp?][] = [
  ['agent.data_dir', () => ({}), 'accept'],
  ['agent.insecure_bootstrap = false (no other bundle source)', () => ({ bootstrap: 'insecure_bootstrap = false' }), 'refuse', /trust_bundle_path, trust_bundle_url, or trust_bundle_spiffe_workload_api must be configured/],
  ['agent.rebootstrap_mode', () => ({ agent: 'rebootstrap_mode = "never"' }), 'accept'],
  ['agent.rebootstrap_delay', () => ({ agent: 'rebootstrap_delay = "10m"' }), 'accept'],
  ['agent.join_token', () => ({}), 'accept'],
  ['agent.log_file', () => ({ agent: `log_file = "${D()}/agent.log"` }), 'accept'],
  ['agent.log_format', () => ({ agent: 'log_format = "text"' }), 'accept'],
  ['agent.log_source_location', () => ({ agent: 'log_source_location = true' }), 'accept'],
  ['agent.log_level', () => ({ agent: 'log_level = "DEBUG"' }), 'accept'],
  ['agent.log_level (not a level)', () => ({ agent: 'log_level = "LOUD"' }), 'refuse', /expected one of/],
  ['agent.server_address, agent.server_port', () => ({}), 'accept'],
  ['agent.socket_path', () => ({}), 'accept'],
  ['agent.trust_bundle_path', () => ({ bootstrap: `trust_bundle_path = "${D()}/bundle.pem"` }), 'accept'],
  ['agent.trust_bundle_url', () => ({ bootstrap: 'trust_bundle_url = "https://bundle.example.org/bundle"' }), 'accept'],
  ['agent.trust_bundle_unix_socket', () => ({ bootstrap: 'trust_bundle_url = "http://localhost/bundle"\n  trust_bundle_unix_socket = "/run/bundle.sock"' }), 'accept'],
  ['agent.trust_budnle_unix_socket (agent_full.conf\'s own misspelling)', () => ({ agent: 'trust_budnle_unix_socket = "/run/bundle.sock"' }), 'refuse', /unknown key/],
  ['agent.trust_bundle_format', () => ({ bootstrap: `trust_bundle_path = "${D()}/bundle.pem"\n  trust_bundle_format = "pem"` }), 'accept'],
  ['agent.trust_bundle_spiffe_workload_api (not an address)', () => ({ bootstrap: 'trust_bundle_spiffe_workload_api = "tcp:/nowhere"' }), 'refuse', /trust_bundle_spiffe_workload_api/],
  ['agent.trust_domain', () => ({}), 'accept'],
  ['agent.workload_x509_svid_key_type', () => ({ agent: 'workload_x509_svid_key_type = "ec-p256"' }), 'accept'],
  ['agent.admin_socket_path', () => ({ agent: `admin_socket_path = "${D()}/admin/api.sock"` }), 'accept'],
  ['agent.authorized_delegates', () => ({ agent: 'authorized_delegates = ["spiffe://example.org/delegate"]' }), 'accept'],
  [
    'agent.sds.*',
    () => ({ agent: 'sds {\n    default_svid_name = "default"\n    default_bundle_name = "ROOTCA"\n    default_all_bundles_name = "ALL"\n    disable_spiffe_cert_validation = false\n  }' }),
    'accept',
  ],
  ['agent.allowed_foreign_jwt_claims', () => ({ agent: 'allowed_foreign_jwt_claims = []' }), 'accept'],
  ['agent.experimental.named_pipe_name', () => ({ experimental: 'named_pipe_name = "\\\\spire-agent\\\\public\\\\api"' }), 'refuse', /named_pipe_name is not supported in this platform/],
  ['agent.experimental.admin_named_pipe_name', () => ({ experimental: 'admin_named_pipe_name = ""' }), 'refuse', /admin_named_pipe_name is not supported in this platform/],
  ['agent.experimental.use_sync_authorized_entries', () => ({ experimental: 'use_sync_authorized_entries = true' }), 'accept'],
  // Keys spire-agent documents in doc/spire_agent.md but not in agent_full.conf.
  ['agent.retry_bootstrap', () => ({ agent: 'retry_bootstrap = false' }), 'accept'],
  ['agent.join_token_file (file missing)', () => ({ bootstrap: 'insecure_bootstrap = true', nodeAttestor: 'NodeAttestor "join_token" {\n    plugin_data {}\n  }', agent: `join_token_file = "${D()}/no-token"` }), 'refuse', /no-token/],
  ['agent.x509_svid_cache_max_size, jwt_svid_cache_max_size', () => ({ agent: 'x509_svid_cache_max_size = 1000\n  jwt_svid_cache_max_size = 1000' }), 'accept'],
  ['agent.availability_target', () => ({ agent: 'availability_target = "24h"' }), 'accept'],
  ['agent.profiling_enabled', () => ({ agent: 'profiling_enabled = true' }), 'refuse', /Go pprof profiling is not available/],
  ['agent.experimental.sync_interval', () => ({ experimental: 'sync_interval = "10s"' }), 'accept'],
  ['agent.experimental.feature_flags (v1.13.3\'s one flag)', () => ({ experimental: 'feature_flags = ["i_am_a_test_flag"]' }), 'accept'],
  ['agent.experimental.feature_flags (another)', () => ({ experimental: 'feature_flags = ["nope"]' }), 'refuse', /unknown feature flag/],
  // Works where the runtime has X25519MLKEM768 (Node.js 24), refused with that reason elsewhere.
  ['agent.experimental.require_pq_kem', () => ({ experimental: 'require_pq_kem = true' }), pqKemUnsupportedReason() ? 'refuse' : 'accept', /X25519MLKEM768/],
  ['agent.experimental.ratelimit (v1.15)', () => ({ experimental: 'ratelimit {}' }), 'refuse', /rate limiting .* is not implemented/],
  ['plugins.*.plugin_cmd', () => ({ workloadAttestor: 'WorkloadAttestor "unix" {\n    plugin_cmd = "/usr/bin/true"\n    plugin_data {}\n  }' }), 'refuse', /external plugins are not supported/],
  ['plugins.*.plugin_checksum', () => ({ workloadAttestor: 'WorkloadAttestor "unix" {\n    plugin_checksum = "00"\n    plugin_data {}\n  }' }), 'refuse', /external plugins are not supported/],
  ['plugins.*.plugin_data_file', () => ({ workloadAttestor: `WorkloadAttestor "unix" {\n    plugin_data_file = "${D()}/unix.hcl"\n  }` }), 'accept'],
  ['plugins.*.enabled = false (a second attestor)', () => ({ plugins: 'WorkloadAttestor "systemd" {\n    enabled = false\n  }' }), 'accept'],
  ['plugins.*.enabled = false (the only WorkloadAttestor)', () => ({ workloadAttestor: 'WorkloadAttestor "unix" {\n    enabled = false\n  }' }), 'refuse', /configures no WorkloadAttestor/],
  ['KeyManager "disk".directory', () => ({ keyManager: `KeyManager "disk" {\n    plugin_data {\n      directory = "${D()}/data"\n    }\n  }` }), 'accept'],
  ['KeyManager "memory"', () => ({}), 'accept'],
  ['KeyManager: a second one', () => ({ plugins: `KeyManager "disk" {\n    plugin_data {\n      directory = "${D()}/data"\n    }\n  }` }), 'refuse', /must configure exactly one KeyManager/],
  ['NodeAttestor "aws_iid".ec2_metadata_endpoint', () => ({ nodeAttestor: 'NodeAttestor "aws_iid" {\n    plugin_data {\n      ec2_metadata_endpoint = "http://169.254.169.254/latest"\n    }\n  }' }), 'accept'],
  ['NodeAttestor "azure_msi".resource_id', () => ({ nodeAttestor: 'NodeAttestor "azure_msi" {\n    plugin_data {\n      resource_id = "https://management.azure.com/"\n    }\n  }' }), 'accept'],
  [
    'NodeAttestor "gcp_iit".identity_token_host, service_account',
    () => ({ nodeAttestor: 'NodeAttestor "gcp_iit" {\n    plugin_data {\n      identity_token_host = "metadata.google.internal"\n      service_account = "default"\n    }\n  }' }),
    'accept',
  ],
  ['NodeAttestor "join_token"', () => ({}), 'accept'],
  ['NodeAttestor "k8s_psat".cluster, token_path', () => ({ nodeAttestor: 'NodeAttestor "k8s_psat" {\n    plugin_data {\n      cluster = "c1"\n      token_path = "/var/run/secrets/tokens/spire-agent"\n    }\n  }' }), 'accept'],
  [
    'NodeAttestor "sshpop".host_key_path, host_cert_path (files missing)',
    () => ({ nodeAttestor: `NodeAttestor "sshpop" {\n    plugin_data {\n      host_key_path = "${D()}/nokey"\n      host_cert_path = "${D()}/nokey-cert.pub"\n    }\n  }` }),
    'refuse',
    /nokey/,
  ],
  [
    'NodeAttestor "x509pop".private_key_path, certificate_path, intermediates_path (files missing)',
    () => ({
      nodeAttestor: `NodeAttestor "x509pop" {\n    plugin_data {\n      private_key_path = "${D()}/k.pem"\n      certificate_path = "${D()}/c.pem"\n      intermediates_path = "${D()}/i.pem"\n    }\n  }`,
    }),
    'refuse',
    /c\.pem|k\.pem/,
  ],
  [
    'NodeAttestor "x509pop" with a join_token too (files missing)',
    () => ({
      nodeAttestor: `NodeAttestor "x509pop" {\n    plugin_data {\n      private_key_path = "${D()}/k.pem"\n      certificate_path = "${D()}/c.pem"\n    }\n  }`,
      agent: 'join_token = "a-join-token"',
    }),
    'refuse',
    /c\.pem|k\.pem/,
  ],
  [
    'NodeAttestor "tpm_devid".* (files missing)',
    () => ({
      nodeAttestor:
        `NodeAttestor "tpm_devid" {\n    plugin_data {\n      tpm_device_path = "/dev/tpmrm0"\n      devid_cert_path = "${D()}/devid.pem"\n      devid_priv_path = "${D()}/devid-private.blob"\n` +
        `      devid_pub_path = "${D()}/devid-public.blob"\n      endorsement_hierarchy_password = "password"\n      owner_hierarchy_password = "password"\n      devid_password = "password"\n    }\n  }`,
    }),
    'refuse',
    /devid/,
  ],
  ['SVIDStore "gcp_secretmanager"', () => ({ plugins: 'SVIDStore "gcp_secretmanager" {\n    plugin_data {\n      service_account_file = ""\n    }\n  }' }), 'refuse', /no SVIDStore plugins are built in/],
  ['SVIDStore "aws_secretsmanager"', () => ({ plugins: 'SVIDStore "aws_secretsmanager" {\n    plugin_data {\n      region = "us-east-1"\n    }\n  }' }), 'refuse', /no SVIDStore plugins are built in/],
  [
    'WorkloadAttestor "docker".*',
    () => ({ plugins: 'WorkloadAttestor "docker" {\n    plugin_data {\n      docker_socket_path = "unix:///var/run/docker.sock"\n      docker_version = ""\n      use_new_container_locator = true\n      verbose_container_locator_logs = false\n    }\n  }' }),
    'accept',
  ],
  [
    'WorkloadAttestor "docker".experimental.sigstore',
    () => ({ plugins: 'WorkloadAttestor "docker" {\n    plugin_data {\n      experimental {\n        sigstore {\n          rekor_url = "https://rekor.sigstore.dev"\n        }\n      }\n    }\n  }' }),
    'refuse',
    // Sigstore image verification is not built in; the parser refuses the block as an unknown key.
    /plugin_data\.experimental: unknown key/,
  ],
  [
    'WorkloadAttestor "k8s".* (read-only port)',
    () => ({ plugins: 'WorkloadAttestor "k8s" {\n    plugin_data {\n      kubelet_read_only_port = 10255\n      node_name_env = "MY_NODE_NAME"\n      use_new_container_locator = true\n      verbose_container_locator_logs = false\n    }\n  }' }),
    'accept',
  ],
  [
    'WorkloadAttestor "k8s".kubelet_ca_path (file missing)',
    () => ({ plugins: `WorkloadAttestor "k8s" {\n    plugin_data {\n      kubelet_secure_port = 10250\n      kubelet_ca_path = "${D()}/kubelet-ca.crt"\n      node_name = "n1"\n    }\n  }` }),
    'refuse',
    /kubelet-ca\.crt/,
  ],
  ['WorkloadAttestor "systemd"', () => ({ plugins: 'WorkloadAttestor "systemd" {\n    plugin_data {}\n  }' }), 'accept'],
  ['WorkloadAttestor "unix".*', () => ({ workloadAttestor: 'WorkloadAttestor "unix" {\n    plugin_data {\n      discover_workload_path = false\n      workload_size_limit = 0\n    }\n  }' }), 'accept'],
  ['telemetry.Prometheus.host, port', () => ({ top: 'telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = 9988\n  }\n}\n' }), 'accept'],
  ['telemetry.DogStatsd', () => ({ top: 'telemetry {\n  DogStatsd = [\n    { address = "localhost:8125" },\n  ]\n}\n' }), 'refuse', /DogStatsd/],
  ['telemetry.Statsd', () => ({ top: 'telemetry {\n  Statsd = [\n    { address = "localhost:1337" },\n  ]\n}\n' }), 'refuse', /Statsd/],
  ['telemetry.M3', () => ({ top: 'telemetry {\n  M3 = [\n    { address = "localhost:9000" env = "dev" },\n  ]\n}\n' }), 'refuse', /M3/],
  ['telemetry.InMem', () => ({ top: 'telemetry {\n  InMem {\n    enabled = true\n  }\n}\n' }), 'refuse', /InMem/],
  [
    'health_checks.*',
    () => ({ top: 'health_checks {\n  listener_enabled = true\n  bind_address = "localhost"\n  bind_port = "8080"\n  live_path = "/live"\n  ready_path = "/ready"\n}\n' }),
    'accept',
  ],
];

async function byValidate(path: string): Promise<{ ok: boolean; text: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await validate(['-config', path], { stdout, stderr, env: {}, signal: new AbortController().signal }, { platformProbe: () => probeFor(HOSTS.bareMetal) });
  return { ok: code === 0, text: err };
}

/** What `run` does with the file before it serves: load, then build the plugins (closed again here). */
async function byRun(path: string, text: string): Promise<{ ok: boolean; text: string }> {
  try {
    const config = await loadConfig(path, { expandEnv: false, env: {} });
    const plugins = await openRunPlugins(
      config,
      { file: config.source, text, env: {} },
      {
        proc: new ProcReader('/proc'),
        log: nullLogger,
        clock: systemClock,
        // A case that reaches the TPM has already passed every check validate makes.
        openTpm: () => Promise.reject(new SpiffeAgentError('tpm_device_not_found', 'tpm: not opened in this test')),
        buildServerPlugins: true,
      },
    );
    await plugins.server?.nodeAttestor.close?.();
    await plugins.server?.keyManager.close?.();
    return { ok: true, text: '' };
  } catch (err) {
    if (!(err instanceof SpiffeAgentError)) throw err;
    return { ok: false, text: err.message };
  }
}

describe('validate and run agree on every key of agent_full.conf', () => {
  it.each(CASES)('%s', async (_key, parts, verdict, reason) => {
    const text = conf(parts());
    const path = join(dir, `agent-${Math.random().toString(36).slice(2)}.conf`);
    await writeFile(path, text);
    const [v, r] = [await byValidate(path), await byRun(path, text)];
    expect({ validate: v.ok, run: r.ok }, `validate: ${v.text}\nrun: ${r.text}\n--- conf ---\n${text}`).toEqual({ validate: verdict === 'accept', run: verdict === 'accept' });
    if (verdict === 'accept') return;
    expect(v.text).toMatch(reason!);
    expect(r.text).toMatch(reason!);
    // The same reason, said with the file and a line, by both.
    const line = new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: [^\\n]*(${reason!.source})`);
    expect(v.text, 'validate names file:line: key: reason').toMatch(line);
    expect(r.text, 'run names file:line: key: reason').toMatch(line);
  });

  it('a case can fail: a config only run refuses is caught (the comparison is not vacuous)', async () => {
    const text = conf({});
    const path = join(dir, 'agent-base.conf');
    await writeFile(path, text);
    const v = await byValidate(path);
    const r = await byRun(path.replace(/\.conf$/, '.missing.conf'), text);
    expect(v.ok).toBe(true);
    expect(r.ok).toBe(false);
  });
});
