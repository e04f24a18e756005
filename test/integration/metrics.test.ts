/**
 * telemetry { Prometheus { ... } } on the real daemon: /metrics is served on a free port, real
 * Workload API calls (processes under distinct uids) move spire-agent's RPC and attestation metrics
 * and ours; and in server mode with nothing to attest to, /metrics answers while attestation fails.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_MAIN, AgentProcess, cli, sleep, uidEntry } from '../helpers/agent-process.js';
import { freePort } from '../helpers/spire/proc.js';

const A = { uid: 1111, gid: 1111 };
const NOBODY = { uid: 1113, gid: 1113 };

/** `name{labels} value` samples whose name is `name` and whose labels include every `want` pair. */
function value(text: string, name: string, want: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(want).every(([k, v]) => labels[k] === v)) total = (total ?? 0) + Number(m[3]);
  }
  return total;
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
}

describe('metrics on the embedded authority', () => {
  let agent: AgentProcess;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    agent = await AgentProcess.start({
      entries: [uidEntry('/a', A.uid)],
      topLevel: `telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = ${port}\n  }\n}`,
    });
  });
  afterAll(async () => agent?.stop());

  it('counts Workload API calls by method and status, attestations per attestor, and audit decisions', async () => {
    const before = await scrape(port);
    expect(value(before, 'spire_agent_started')).toBe(1);
    expect(value(before, 'spiffe_agent_can_mint')).toBe(1);
    const okBefore = value(before, 'spire_agent_rpc_workload_api_fetch_x509svid', { status: 'OK' }) ?? 0;

    for (let i = 0; i < 3; i++) expect((await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath], A)).code).toBe(0);
    expect((await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath, '-timeout', '2s'], NOBODY)).code).not.toBe(0);
    expect((await cli(['api', 'fetch', 'jwt', '-socketPath', agent.socketPath, '-audience', 'x'], A)).code).toBe(0);

    const after = await scrape(port);
    expect(value(after, 'spire_agent_rpc_workload_api_fetch_x509svid', { status: 'OK' })).toBe(okBefore + 3);
    expect(value(after, 'spire_agent_rpc_workload_api_fetch_x509svid', { status: 'PermissionDenied' })).toBeGreaterThanOrEqual(1);
    expect(value(after, 'spire_agent_rpc_workload_api_fetch_jwtsvid', { status: 'OK' })).toBe(1);
    expect(value(after, 'spire_agent_rpc_workload_api_fetch_x509svid_elapsed_time_count', { status: 'OK' })).toBe(okBefore + 3);
    expect(value(after, 'spire_agent_workload_api_workload_attestor', { attestor: 'unix', status: 'OK' })).toBeGreaterThanOrEqual(5);
    expect(value(after, 'spire_agent_workload_api_workload_attestation', { status: 'OK' })).toBeGreaterThanOrEqual(5);
    expect(value(after, 'spire_agent_workload_api_connection')).toBeGreaterThanOrEqual(5);
    expect(value(after, 'spire_agent_workload_api_connections')).toBe(0);
    expect(value(after, 'spiffe_agent_audit_decisions', { decision: 'granted' })).toBeGreaterThanOrEqual(4);
    expect(value(after, 'spiffe_agent_audit_decisions', { decision: 'denied' })).toBeGreaterThanOrEqual(1);
    expect(value(after, 'spire_agent_lru_cache_record_map_size')).toBe(1);
    expect(value(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    // go-metrics' EnableHostnameLabel is on by default: every sample names the host.
    expect(after).toMatch(/spire_agent_started\{[^}]*host="[^"]+"/);
  });

  it('shows an open Workload API stream while it is open', async () => {
    const watch = spawn(process.execPath, [AGENT_MAIN, 'api', 'watch', '-socketPath', agent.socketPath], { uid: A.uid, gid: A.gid, stdio: 'ignore' });
    try {
      let open = 0;
      for (let i = 0; i < 50 && open < 1; i++) {
        await sleep(100);
        open = value(await scrape(port), 'spiffe_agent_open_streams') ?? 0;
      }
      expect(open).toBe(1);
      expect(value(await scrape(port), 'spire_agent_workload_api_connections')).toBe(1);
    } finally {
      watch.kill();
    }
  });
});

describe('metrics while node attestation fails', () => {
  it('serves /metrics from start-up although the SPIRE server is unreachable (spire issue 7164)', async () => {
    const dir = await mkdtemp('/tmp/spiffe-agent-metrics-');
    const [port, deadPort] = [await freePort(), await freePort()];
    const conf = `${dir}/agent.conf`;
    await writeFile(
      conf,
      `agent {
  trust_domain = "example.org"
  data_dir = "${dir}/data"
  socket_path = "${dir}/api.sock"
  server_address = "127.0.0.1"
  server_port = "${deadPort}"
  insecure_bootstrap = true
  join_token = "not-a-real-token"
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
telemetry {
  Prometheus {
    port = ${port}
  }
}
`,
    );
    const proc = spawn(process.execPath, [AGENT_MAIN, 'run', '-config', conf], { stdio: 'ignore' });
    try {
      let text = '';
      for (let i = 0; i < 100 && !text; i++) {
        await sleep(100);
        text = await fetch(`http://localhost:${port}/metrics`).then((r) => r.text(), () => '');
      }
      expect(value(text, 'spire_agent_started')).toBe(1);
      expect(value(text, 'spiffe_agent_can_mint')).toBe(0);
      expect(value(text, 'spiffe_agent_ready')).toBe(0);
      // Still attesting (retry_bootstrap backs off): later scrapes answer too.
      await sleep(1500);
      expect(proc.exitCode).toBeNull();
      expect(value(await scrape(port), 'spiffe_agent_server_reachable')).toBe(0);
    } finally {
      proc.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
