import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { run, validate } from '../../../../src/cli/commands/validate.js';
import { fakeProbe, HOSTS, probeFor } from '../../../helpers/platform-probe.js';

function io(env: Record<string, string> = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { io: { stdout, stderr, env, signal: new AbortController().signal }, out: () => out, err: () => err };
}

async function file(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'validate-'));
  await writeFile(join(dir, name), text);
  return join(dir, name);
}

describe('spiffe-agent validate', () => {
  it("prints the platform report, then spire-agent's success line as the last line, for a valid file", async () => {
    const t = io();
    expect(await run(['-config', 'conf/agent/agent.conf'], t.io)).toBe(0);
    // Embedded mode: no node attestation, so no attestor to judge.
    expect(t.out()).toMatch(/^Platform: cloud=\S+ virtualization=\S+ .* node_attestor=none\nSPIRE agent configuration file is valid\.\n$/);
  });

  it('warns about a node attestor that cannot work here (FAKE host answers: GCE), and the file is still valid', async () => {
    const path = await file(
      'agent.conf',
      'agent {\n  trust_domain = "example.org"\n  data_dir = "/tmp/x"\n  server_address = "127.0.0.1"\n  insecure_bootstrap = true\n}\n' +
        'plugins {\n  NodeAttestor "aws_iid" { plugin_data {} }\n  KeyManager "memory" { plugin_data {} }\n  WorkloadAttestor "unix" { plugin_data {} }\n}\n',
    );
    const t = io();
    expect(await validate(['-config', path], t.io, { platformProbe: () => probeFor(HOSTS.gce) })).toBe(0);
    expect(t.out()).toBe(
      'Platform: cloud=gcp virtualization=not-detected container=not-detected manufacturer=Google model="Google Compute Engine" tpm=none k8s_token=none node_attestor=aws_iid\n' +
        'Warning: NodeAttestor "aws_iid" may not work on this node: this host does not report Amazon EC2 (it reports "Google" "Google Compute Engine"); aws_iid needs the EC2 instance metadata service to sign an instance identity document; the agent tries it anyway\n' +
        'SPIRE agent configuration file is valid.\n',
    );
  });

  it('stops the probe and prints no report for an invalid file', async () => {
    const path = await file('agent.conf', 'agent {\n  trust_domain = "example.org"\n}\nplugins {\n  WorkloadAttestor "nope" { plugin_data {} }\n}\n');
    const probe = fakeProbe({ system: 'hang' });
    const t = io();
    expect(await validate(['-config', path], t.io, { platformProbe: () => probe })).toBe(1);
    expect(t.out()).toBe('');
    expect(probe.closed).toBeGreaterThanOrEqual(1);
  });

  it('lists every problem on stderr and exits 1 for an invalid file', async () => {
    const path = await file('agent.conf', 'agent {\n  trust_domain = "example.org"\n  sync_interval = "soon"\n  bogus = 1\n}\n');
    const t = io();
    expect(await run([`-config=${path}`], t.io)).toBe(1);
    expect(t.out()).toBe('');
    expect(t.err()).toContain('SPIRE agent configuration file is invalid: config: 2 problems');
    expect(t.err()).toContain(`${path}:3: agent.sync_interval: expected a duration like "5s", got "soon"`);
    expect(t.err()).toContain(`${path}:4: agent.bogus: unknown key`);
  });

  it('expands the environment of the command with -expandEnv', async () => {
    // The workload attestor `run` needs (validate refuses a config without one, as run does).
    const path = await file('agent.conf', 'agent {\n  trust_domain = "$TD"\n}\nplugins {\n  WorkloadAttestor "unix" {}\n}\n');
    expect(await run(['-config', path], io({ TD: 'example.org' }).io)).toBe(1);
    expect(await run(['-config', path, '-expandEnv'], io({ TD: 'example.org' }).io)).toBe(0);
  });

  it('reports a missing file with the -config hint', async () => {
    const t = io();
    expect(await run(['-config', '/nonexistent/agent.conf'], t.io)).toBe(1);
    expect(t.err()).toContain('/nonexistent/agent.conf: could not find config file: please use the -config flag');
  });

  it('rejects an unknown flag with usage', async () => {
    const t = io();
    expect(await run(['-nope'], t.io)).toBe(1);
    expect(t.err()).toContain('flag provided but not defined: -nope');
  });
});
