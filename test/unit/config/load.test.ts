import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfigText } from '../../../src/config/load.js';
import { pqKemUnsupportedReason } from '../../../src/net/pq-kem.js';

const MIN = 'agent {\n  trust_domain = "example.org"\n}\n';

describe('defaults', () => {
  it('fills every default spire-agent and the brief define when only trust_domain is set', async () => {
    const c = await parseConfigText(MIN, '/etc/agent.conf', { expandEnv: false });
    expect(c.agent).toMatchObject({
      trustDomain: 'example.org',
      socketPath: '/tmp/spire-agent/public/api.sock',
      dataDir: '.',
      logLevel: 'info',
      logFormat: 'text',
      workloadX509SvidKeyType: 'ec-p256',
      x509SvidCacheMaxSize: 1000,
      jwtSvidCacheMaxSize: 1000,
      reattestIntervalMs: 30_000,
      shutdownGracePeriodMs: 5000,
      availabilityTargetMs: 0,
      sdsDefaultSvidName: 'default',
      sdsDefaultBundleName: 'ROOTCA',
      sdsDefaultAllBundlesName: 'ALL',
    });
    expect(c.agent.logSelectors).toEqual([
      'unix:uid', 'unix:gid', 'unix:user', 'unix:group', 'unix:path', 'unix:sha256',
      'k8s:ns', 'k8s:sa', 'k8s:pod-name', 'systemd:id', 'docker:image_id',
    ]);
    expect(c.mode).toBe('embedded');
    if (c.mode !== 'embedded') return;
    expect(c.embeddedAuthority).toEqual({
      entriesFile: undefined,
      caKeyType: 'ec-p256',
      caTtlMs: 86_400_000,
      defaultX509SvidTtlMs: 3_600_000,
      defaultJwtSvidTtlMs: 300_000,
      jwtIssuer: undefined,
      jwtKeyType: 'ec-p256',
      caSubject: { country: ['US'], organization: ['SPIFFE'], commonName: '' },
      federatedBundles: {},
    });
    expect(c.healthChecks).toEqual({ listenerEnabled: false, bindAddress: 'localhost', bindPort: 80, livePath: '/live', readyPath: '/ready' });
    expect(c.plugins).toEqual([]);
  });

  it('returns a deeply frozen config', async () => {
    const c = await parseConfigText(MIN, '/etc/agent.conf', { expandEnv: false });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.agent)).toBe(true);
    expect(Object.isFrozen(c.agent.logSelectors)).toBe(true);
    expect(c.mode === 'embedded' && Object.isFrozen(c.embeddedAuthority.caSubject)).toBe(true);
  });

  it.each(['DEBUG', 'debug', 'Debug'])('reads log_level %s case-insensitively', async (level) => {
    const c = await parseConfigText(`agent {\n trust_domain = "example.org"\n log_level = "${level}"\n}\n`, 'a.conf', { expandEnv: false });
    expect(c.agent.logLevel).toBe('debug');
  });

  it.each([
    ['WARNING', 'warn'],
    ['FATAL', 'fatal'],
    ['Panic', 'panic'],
  ])('reads log_level %s as logrus does: %s', async (level, want) => {
    const c = await parseConfigText(`agent {\n trust_domain = "example.org"\n log_level = "${level}"\n}\n`, 'a.conf', { expandEnv: false });
    expect(c.agent.logLevel).toBe(want);
  });

  it('reads sync_interval from experimental, where spire-agent puts it, and from agent', async () => {
    const srv = ' server_address = "srv"\n insecure_bootstrap = true\n';
    const exp = await parseConfigText(`agent {\n trust_domain = "example.org"\n${srv} experimental {\n sync_interval = "30s"\n }\n}\n`, 'a.conf', { expandEnv: false });
    expect(exp.mode === 'server' && exp.server.syncIntervalMs).toBe(30_000);
    const top = await parseConfigText(`agent {\n trust_domain = "example.org"\n${srv} sync_interval = "1m"\n}\n`, 'a.conf', { expandEnv: false });
    expect(top.mode === 'server' && top.server.syncIntervalMs).toBe(60_000);
  });

  it('defaults server mode as spire-agent v1.13.3 does: sync every 5s with SyncAuthorizedEntries', async () => {
    const c = await parseConfigText('agent {\n trust_domain = "example.org"\n server_address = "srv"\n trust_bundle_path = "/b.pem"\n}\n', 'a.conf', { expandEnv: false });
    expect(c.mode).toBe('server');
    if (c.mode !== 'server') return;
    expect(c.server).toMatchObject({
      serverAddress: 'srv',
      serverPort: 8081,
      trustBundleFormat: 'pem',
      rebootstrapMode: 'never',
      rebootstrapDelayMs: 600_000,
      syncIntervalMs: 5000,
      useSyncAuthorizedEntries: true,
      jwtSvidCacheHitTimeoutMs: undefined,
    });
    expect(Object.isFrozen(c.server)).toBe(true);
    expect('embeddedAuthority' in c).toBe(false);
  });

  it('refuses a sync_interval of 0 in server mode, which would make the sync loop spin', async () => {
    const text = 'agent {\n trust_domain = "example.org"\n server_address = "srv"\n insecure_bootstrap = true\n experimental {\n sync_interval = "0s"\n }\n}\n';
    await expect(parseConfigText(text, 'a.conf', { expandEnv: false })).rejects.toMatchObject({
      problems: [expect.objectContaining({ key: 'agent.experimental.sync_interval', message: 'sync_interval must be longer than 0s' })],
    });
  });

  it('accepts a trust_domain written as a spiffe:// URI, as spire-agent does', async () => {
    const c = await parseConfigText('agent {\n trust_domain = "spiffe://example.org"\n}\n', 'a.conf', { expandEnv: false });
    expect(c.agent.trustDomain).toBe('example.org');
  });

  it('applies flag overrides before validation, so a trust domain from -trustDomain alone is enough', async () => {
    const c = await parseConfigText('plugins {\n}\n', 'a.conf', { expandEnv: false, agentOverrides: { trust_domain: 'flag.org' } });
    expect(c.agent.trustDomain).toBe('flag.org');
  });
});

describe('spire-agent keys', () => {
  it('accepts every key spire-agent documents for the agent block', async () => {
    const text = `agent {
  admin_socket_path = "/run/spire-agent/admin/admin.sock"
  allow_unauthenticated_verifiers = true
  allowed_foreign_jwt_claims = ["aud2"]
  authorized_delegates = ["spiffe://example.org/delegate"]
  availability_target = "24h"
  data_dir = "/var/lib/spire-agent"
  disable_sds_api = false
  disable_workload_api = false
  insecure_bootstrap = false
  jwt_svid_cache_max_size = 10
  join_token = "abc"
  log_file = "/var/log/agent.log"
  log_format = "json"
  log_level = "WARN"
  log_source_location = true
  log_selectors = ["unix"]
  profiling_enabled = false
  profiling_freq = 0
  profiling_names = ["heap"]
  profiling_port = 6060
  rebootstrap_mode = "auto"
  rebootstrap_delay = "1m"
  server_address = "spire-server"
  server_port = 8443
  socket_path = "/run/spire-agent/public/api.sock"
  trust_bundle_format = "spiffe"
  trust_bundle_url = "https://bundle.example.org/"
  trust_domain = "example.org"
  workload_x509_svid_key_type = "rsa-2048"
  x509_svid_cache_max_size = 10
  sds {
    default_svid_name = "svid"
    default_bundle_name = "bundle"
    default_all_bundles_name = "all"
    disable_spiffe_cert_validation = true
  }
  experimental {
    sync_interval = "10s"
    jwt_svid_cache_hit_timeout = "10s"
    use_sync_authorized_entries = false
    require_pq_kem = false
    feature_flags = ["i_am_a_test_flag"]
  }
}
telemetry {
  Prometheus {
    port = 9988
  }
}
`;
    const c = await parseConfigText(text, 'a.conf', { expandEnv: false });
    expect(c.mode).toBe('server');
    if (c.mode !== 'server') return;
    expect(c.server).toMatchObject({
      serverAddress: 'spire-server',
      serverPort: 8443,
      trustBundleFormat: 'spiffe',
      rebootstrapMode: 'auto',
      syncIntervalMs: 10_000,
      useSyncAuthorizedEntries: false,
      jwtSvidCacheHitTimeoutMs: 10_000,
    });
    expect(c.agent).toMatchObject({
      logLevel: 'warn',
      logFormat: 'json',
      availabilityTargetMs: 86_400_000,
      workloadX509SvidKeyType: 'rsa-2048',
      sdsDefaultSvidName: 'svid',
      sdsDisableSpiffeCertValidation: true,
      authorizedDelegates: ['spiffe://example.org/delegate'],
    });
  });

  it('log_source_location reaches the agent section', async () => {
    const c = await parseConfigText(`agent {\n  trust_domain = "example.org"\n  log_source_location = true\n}\n`, 'a.conf', { expandEnv: false });
    expect(c.agent.logSourceLocation).toBe(true);
  });

  // Each was accepted and then ignored before; now each is refused with file, line and reason.
  it.each([
    ['named_pipe_name', 'experimental {\n    named_pipe_name = "x"\n  }', /a\.conf:4: agent\.experimental\.named_pipe_name: named_pipe_name is not supported in this platform; please use socket_path instead/],
    ['admin_named_pipe_name', 'experimental {\n    admin_named_pipe_name = "x"\n  }', /a\.conf:4: agent\.experimental\.admin_named_pipe_name: .*please use admin_socket_path instead/],
    ['an unknown feature flag', 'experimental {\n    feature_flags = ["i_am_a_test_flag", "foo", "bar"]\n  }', /a\.conf:4: agent\.experimental\.feature_flags: error loading feature flags: unknown feature flag\(s\): \[foo bar\]/],
    ['ratelimit', 'experimental {\n    ratelimit {\n      fetch_x509_svid = 10\n    }\n  }', /a\.conf:4: agent\.experimental\.ratelimit: Workload API rate limiting \(spire-agent v1\.15\) is not implemented/],
    ['broker', 'experimental {\n    broker {}\n  }', /agent\.experimental\.broker: the SPIFFE Broker API is not implemented/],
    ['profiling_enabled', 'profiling_enabled = true', /a\.conf:3: agent\.profiling_enabled: Go pprof profiling is not available in spiffe-agent; profile it with Node\.js flags/],
    ['require_pq_kem without a server', 'experimental {\n    require_pq_kem = true\n  }', /agent\.experimental\.require_pq_kem: .*(without agent\.server_address there is none|cannot offer the X25519MLKEM768)/],
  ])('refuses %s', async (_name, body, want) => {
    const text = `agent {\n  trust_domain = "example.org"\n  ${body}\n}\n`;
    await expect(parseConfigText(text, 'a.conf', { expandEnv: false })).rejects.toThrow(want);
  });

  it('require_pq_kem: refused where the runtime cannot offer X25519MLKEM768, accepted where it can', async () => {
    const text = 'agent {\n  trust_domain = "example.org"\n  server_address = "s"\n  insecure_bootstrap = true\n  experimental {\n    require_pq_kem = true\n  }\n}\n';
    const supported = pqKemUnsupportedReason() === undefined;
    const load = parseConfigText(text, 'a.conf', { expandEnv: false });
    if (supported) await expect(load).resolves.toMatchObject({ server: { requirePqKem: true } });
    else await expect(load).rejects.toThrow(/a\.conf:6: agent\.experimental\.require_pq_kem: this Node\.js v\d+.* cannot offer the X25519MLKEM768 key exchange; run the agent on Node\.js 24/);
  });

  it.each(['plugin_cmd = "/usr/bin/x"', 'plugin_args = ["-v"]', 'plugin_checksum = "ab"'])('refuses %s on a plugin instead of running the built-in', async (line) => {
    const text = `${MIN}plugins {\n  NodeAttestor "join_token" {\n    ${line}\n    plugin_data {}\n  }\n}\n`;
    const key = line.split(' ')[0];
    await expect(parseConfigText(text, 'a.conf', { expandEnv: false })).rejects.toThrow(new RegExp(`plugins\\.NodeAttestor\\.join_token\\.${key}: external plugins are not supported by spiffe-agent`));
  });

  it('retry_bootstrap defaults to true, as spire-agent v1.13.3; setting it with rebootstrap_mode is refused as there', async () => {
    const base = 'agent {\n  trust_domain = "example.org"\n  server_address = "spire-server"\n  insecure_bootstrap = true\n';
    const dflt = await parseConfigText(`${base}}\n`, 'a.conf', { expandEnv: false });
    expect(dflt.mode === 'server' && dflt.server.retryBootstrap).toBe(true);
    const off = await parseConfigText(`${base}  retry_bootstrap = false\n}\n`, 'a.conf', { expandEnv: false });
    expect(off.mode === 'server' && off.server.retryBootstrap).toBe(false);
    const withRebootstrap = 'agent {\n  trust_domain = "example.org"\n  server_address = "spire-server"\n  trust_bundle_path = "/b.pem"\n  rebootstrap_mode = "auto"\n  retry_bootstrap = true\n}\n';
    await expect(parseConfigText(withRebootstrap, 'a.conf', { expandEnv: false })).rejects.toThrow(/a\.conf:6: agent\.retry_bootstrap: you can not set retry_bootstrap when using reboostrap_mode/);
  });

  it('keeps plugins in file order with enabled, data and path', async () => {
    const text = `${MIN}plugins {
  WorkloadAttestor "unix" {
    plugin_data {
      discover_workload_path = true
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
    enabled = false
  }
}
`;
    const c = await parseConfigText(text, 'a.conf', { expandEnv: false });
    expect(c.plugins).toEqual([
      { type: 'WorkloadAttestor', name: 'unix', enabled: true, data: { discover_workload_path: true }, dataFile: undefined, path: 'plugins.WorkloadAttestor.unix' },
      { type: 'KeyManager', name: 'memory', enabled: true, data: {}, dataFile: undefined, path: 'plugins.KeyManager.memory' },
      { type: 'NodeAttestor', name: 'join_token', enabled: false, data: {}, dataFile: undefined, path: 'plugins.NodeAttestor.join_token' },
    ]);
  });

  it('accepts the HCL1 one-line and quoted-type plugin forms spire-agent configs use', async () => {
    const text = `${MIN}plugins {
  "NodeAttestor" "join_token" {
    plugin_data {}
  }
  WorkloadAttestor "unix" { plugin_data { discover_workload_path = true } }
}
`;
    const c = await parseConfigText(text, 'a.conf', { expandEnv: false });
    expect(c.plugins.map((p) => [p.path, p.data])).toEqual([
      ['plugins.NodeAttestor.join_token', {}],
      ['plugins.WorkloadAttestor.unix', { discover_workload_path: true }],
    ]);
  });

  it('does not treat an unknown plugin name as a config error', async () => {
    const c = await parseConfigText(`${MIN}plugins {\n  WorkloadAttestor "nonesuch" {\n    plugin_data {}\n  }\n}\n`, 'a.conf', { expandEnv: false });
    expect(c.plugins[0]?.name).toBe('nonesuch');
  });

  it('reads plugin_data_file as HCL, relative to the working directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cfg-'));
    await writeFile(join(dir, 'unix.hcl'), 'discover_workload_path = true\nworkload_size_limit = 42\n');
    const c = await parseConfigText(`${MIN}plugins {\n  WorkloadAttestor "unix" {\n    plugin_data_file = "unix.hcl"\n  }\n}\n`, 'a.conf', {
      expandEnv: false,
      cwd: dir,
    });
    expect(c.plugins[0]).toMatchObject({ data: { discover_workload_path: true, workload_size_limit: 42 }, dataFile: 'unix.hcl' });
  });
});

describe('loadConfig', () => {
  it('reads a file and records its absolute path as source', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cfg-'));
    await writeFile(join(dir, 'agent.conf'), MIN);
    const c = await loadConfig('agent.conf', { expandEnv: false, cwd: dir });
    expect(c.source).toBe(join(dir, 'agent.conf'));
  });

  it('says where it looked when the file is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cfg-'));
    await expect(loadConfig('nope.conf', { expandEnv: false, cwd: dir })).rejects.toMatchObject({
      code: 'config_not_found',
      message: expect.stringContaining(`${join(dir, 'nope.conf')}: could not find config file: please use the -config flag`),
    });
  });
});
