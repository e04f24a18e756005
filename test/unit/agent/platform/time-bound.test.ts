/**
 * The platform report never holds anything up: a systeminformation call that hangs or throws
 * (FAKE probe, test/helpers/platform-probe.ts) leaves its fields "unknown" once the time bound
 * passes, and the agent is ready before that.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../../../src/agent/agent.js';
import { DEFAULT_PROBE_TIMEOUT_MS } from '../../../../src/agent/platform/facts.js';
import { runPlatformReport, type PlatformReport } from '../../../../src/agent/platform/report.js';
import { loadConfig } from '../../../../src/config/load.js';
import { createLogger } from '../../../../src/telemetry/logger.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { fakeProbe, HOSTS, probeFor } from '../../../helpers/platform-probe.js';

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

function track(p: Promise<PlatformReport>): { value: () => PlatformReport | undefined } {
  let v: PlatformReport | undefined;
  void p.then((r) => (v = r));
  return { value: () => v };
}

describe('platform report: time bound', () => {
  it('a hanging system() and chassis() leave the host fields unknown after the bound, and the probe is stopped', async () => {
    const clock = new FakeClock();
    const probe = fakeProbe({ system: 'hang', chassis: 'hang', paths: { '/dev/tpmrm0': 'usable' } });
    const r = track(runPlatformReport({ probe, attestor: { name: 'aws_iid', data: {} }, clock }));
    await turns();
    expect(r.value()).toBeUndefined();
    clock.advance(DEFAULT_PROBE_TIMEOUT_MS - 1);
    await turns();
    expect(r.value()).toBeUndefined();
    clock.advance(1);
    await turns();
    expect(r.value()?.line).toBe('cloud=unknown virtualization=unknown container=unknown manufacturer=unknown model=unknown tpm=/dev/tpmrm0 k8s_token=none node_attestor=aws_iid');
    // Unknown is not evidence: no warning.
    expect(r.value()?.warnings).toEqual([]);
    expect(probe.closed).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('calls that throw or reject are unknown at once, without waiting for the bound', async () => {
    const clock = new FakeClock();
    const probe = fakeProbe({ system: 'throw', chassis: 'reject', hypervisorUuid: 'reject', paths: { '/dev/tpmrm0': 'throw', '/dev/tpm0': 'reject' } });
    const r = await runPlatformReport({ probe, attestor: { name: 'tpm_devid', data: {} }, clock });
    expect(r.line).toBe('cloud=unknown virtualization=unknown container=unknown manufacturer=unknown model=unknown tpm=unknown k8s_token=none node_attestor=tpm_devid');
    expect(r.warnings).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('one slow answer costs only itself: chassis() hangs, system() still names the cloud', async () => {
    const clock = new FakeClock();
    const r = track(runPlatformReport({ probe: fakeProbe({ system: HOSTS.gce.system, chassis: 'hang' }), attestor: { name: 'aws_iid', data: {} }, clock }));
    await turns();
    clock.advance(DEFAULT_PROBE_TIMEOUT_MS);
    await turns();
    expect(r.value()?.fields.cloud).toBe('gcp');
    expect(r.value()?.warnings).toEqual([expect.objectContaining({ attestor: 'aws_iid' })]);
  });

  it('a hanging file check makes tpm unknown, and tpm_devid is not warned about', async () => {
    const clock = new FakeClock();
    const r = track(runPlatformReport({ probe: fakeProbe({ paths: { '/dev/tpmrm0': 'hang', '/dev/tpm0': 'hang' } }), attestor: { name: 'tpm_devid', data: {} }, clock }));
    await turns();
    clock.advance(DEFAULT_PROBE_TIMEOUT_MS);
    await turns();
    expect(r.value()?.fields.tpm).toBe('unknown');
    expect(r.value()?.warnings).toEqual([]);
  });
});

describe('platform report at agent start', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'platform-agent-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const EMBEDDED = (dir: string) => `embedded_authority {\n  entries_file = "${dir}/entries.json"\n}\n`;
  async function agentWith(probe: ReturnType<typeof fakeProbe>, mode: (dir: string) => string = EMBEDDED, agentExtra = '', plugins = '') {
    await writeFile(join(dir, 'entries.json'), JSON.stringify({ entries: [] }));
    const path = join(dir, 'agent.conf');
    await writeFile(
      path,
      `agent {\n  trust_domain = "example.org"\n  data_dir = "${dir}/data"\n  socket_path = "${dir}/api.sock"\n${agentExtra}}\n${mode(dir)}plugins {\n${plugins}  WorkloadAttestor "unix" { plugin_data {} }\n}\n`,
    );
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const clock = new FakeClock(Date.now());
    const log = createLogger({ level: 'info', format: 'text', destination: out });
    const agent = new Agent({ config: await loadConfig(path, { expandEnv: false }), log, clock, env: {}, platformProbe: () => probe });
    return { agent, clock, logs: () => text };
  }

  it('is ready while the probe still hangs, and logs the report with unknown fields once the bound passes', async () => {
    const probe = fakeProbe({ system: 'hang', chassis: 'hang', hypervisorUuid: 'hang' });
    const { agent, clock, logs } = await agentWith(probe);
    try {
      await agent.start(new AbortController().signal);
      expect(agent.isReady).toBe(true);
      // The report's module loads on demand; wait until it asks the probe.
      for (let i = 0; i < 200 && probe.asked === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(probe.asked).toBe(1);
      await turns();
      expect(logs()).not.toContain('Platform report');
      clock.advance(DEFAULT_PROBE_TIMEOUT_MS);
      await turns();
      expect(logs()).toMatch(
        /level=info msg="Platform report" subsystem_name=platform_report cloud=unknown virtualization=unknown container=unknown manufacturer=unknown model=unknown tpm=none k8s_token=none node_attestor=none\n/,
      );
    } finally {
      await agent.close();
    }
  });

  it('a probe that throws does not break start-up; close() stops a probe still running', async () => {
    const throwing = await agentWith(fakeProbe({ system: 'throw', chassis: 'throw' }));
    try {
      await throwing.agent.start(new AbortController().signal);
      expect(throwing.agent.isReady).toBe(true);
    } finally {
      await throwing.agent.close();
    }
    await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(join(tmpdir(), 'platform-agent-'));
    const probe = fakeProbe({ system: 'hang' });
    const { agent, clock, logs } = await agentWith(probe);
    await agent.start(new AbortController().signal);
    for (let i = 0; i < 200 && probe.asked === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await agent.close();
    expect(probe.closed).toBeGreaterThanOrEqual(1);
    // Stopped: nothing is logged after close, even when the bound passes.
    clock.advance(DEFAULT_PROBE_TIMEOUT_MS);
    await turns();
    expect(logs()).not.toContain('Platform report');
  });

  it('server mode: the report runs beside node attestation, and is logged while attestation has not succeeded', async () => {
    // Port 1 on loopback: nothing listens, so attestation keeps failing (its backoff waits on the fake clock).
    const { agent, logs } = await agentWith(
      probeFor(HOSTS.gce),
      () => '',
      '  server_address = "127.0.0.1"\n  server_port = 1\n  insecure_bootstrap = true\n  join_token = "t"\n',
      '  NodeAttestor "join_token" { plugin_data {} }\n  KeyManager "memory" { plugin_data {} }\n',
    );
    const abort = new AbortController();
    let settled = false;
    const started = agent.start(abort.signal).then(
      () => (settled = true),
      () => (settled = true),
    );
    try {
      const end = Date.now() + 10_000;
      while (!logs().includes('msg="Platform report"') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(logs()).toMatch(/msg="Platform report" subsystem_name=platform_report cloud=gcp .* node_attestor=join_token\n/);
      expect(settled).toBe(false);
      expect(agent.isReady).toBe(false);
    } finally {
      abort.abort();
      await agent.close();
      await Promise.race([started, new Promise((r) => setTimeout(r, 5_000))]);
    }
  });
});
