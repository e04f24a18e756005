import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { run } from '../../../../src/cli/commands/validate.js';
import { requireTool } from '../../../helpers/require-tool.js';
import { SSHTestCA, hasSshKeygen } from '../../../helpers/ssh-certs.js';
import { makeX509popCA } from '../../../helpers/spire/x509pop.js';

async function validate(text: string): Promise<{ code: number; err: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'validate-plugins-'));
  const path = join(dir, 'agent.conf');
  await writeFile(path, text);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await run([`-config=${path}`], { stdout, stderr, env: {}, signal: new AbortController().signal } as never);
  return { code, err, path };
}

const AGENT = 'agent {\n  trust_domain = "example.org"\n  data_dir = "/tmp/x"\n}\n';

describe('spiffe-agent validate runs the node attestor and key manager parsers', () => {
  it('reports x509pop and disk problems with file, line and dotted key, and unknown names', async () => {
    const r = await validate(
      `${AGENT}plugins {\n  NodeAttestor "x509pop" {\n    plugin_data {\n      private_key_pth = "/k"\n    }\n  }\n  KeyManager "disk" {\n    plugin_data {}\n  }\n  WorkloadAttestor "unix" {}\n}\n`,
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain('plugins.NodeAttestor.x509pop.plugin_data.private_key_path: private_key_path is required');
    expect(r.err).toContain('plugins.NodeAttestor.x509pop.plugin_data.certificate_path: certificate_path is required');
    expect(r.err).toMatch(new RegExp(`${r.path}:8: plugins\\.NodeAttestor\\.x509pop\\.plugin_data\\.private_key_pth: unknown key`));
    expect(r.err).toContain('plugins.KeyManager.disk.plugin_data.directory: directory must be configured');
  });

  it('refuses an unknown NodeAttestor or KeyManager name', async () => {
    const r = await validate(`${AGENT}plugins {\n  NodeAttestor "nope" {}\n  KeyManager "vault" {}\n  WorkloadAttestor "unix" {}\n}\n`);
    expect(r.code).toBe(1);
    expect(r.err).toContain('unknown NodeAttestor "nope"');
    expect(r.err).toContain('unknown KeyManager "vault"');
  });

  it('accepts join_token + disk', async () => {
    const r = await validate(`${AGENT}plugins {\n  NodeAttestor "join_token" { plugin_data {} }\n  KeyManager "disk" { plugin_data { directory = "/tmp/x" } }\n  WorkloadAttestor "unix" {}\n}\n`);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('spiffe-agent validate runs the workload attestor parsers that run uses', () => {
  it('reports docker, k8s, unix and systemd plugin_data problems with file, line and dotted key', async () => {
    const r = await validate(
      `${AGENT}plugins {\n  NodeAttestor "join_token" {\n    plugin_data {}\n  }\n  KeyManager "memory" {\n    plugin_data {}\n  }\n` +
        `  WorkloadAttestor "unix" {\n    plugin_data {\n      discover_workload_pth = true\n    }\n  }\n` +
        `  WorkloadAttestor "docker" {\n    plugin_data {\n      docker_socket_path = "tcp://127.0.0.1:2375"\n    }\n  }\n` +
        `  WorkloadAttestor "k8s" {\n    plugin_data {\n      kubelet_secure_port = 70000\n    }\n  }\n` +
        `  WorkloadAttestor "systemd" {\n    plugin_data {\n      system_bus_address = "nope"\n    }\n  }\n}\n`,
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`${r.path}:14: plugins\\.WorkloadAttestor\\.unix\\.plugin_data\\.discover_workload_pth: unknown key`));
    expect(r.err).toMatch(new RegExp(`${r.path}:19: plugins\\.WorkloadAttestor\\.docker\\.plugin_data\\.docker_socket_path: expected "unix:///absolute/path"`));
    expect(r.err).toMatch(new RegExp(`${r.path}:24: plugins\\.WorkloadAttestor\\.k8s\\.plugin_data\\.kubelet_secure_port: `));
    expect(r.err).toMatch(new RegExp(`${r.path}:29: plugins\\.WorkloadAttestor\\.systemd\\.plugin_data\\.system_bus_address: `));
  });

  it('refuses an unknown WorkloadAttestor name, as run does', async () => {
    const r = await validate(`${AGENT}plugins {\n  NodeAttestor "join_token" {}\n  KeyManager "memory" {}\n  WorkloadAttestor "nope" {}\n}\n`);
    expect(r.code).toBe(1);
    expect(r.err).toContain('catalog: unknown WorkloadAttestor "nope" at plugins.WorkloadAttestor.nope; built-in ones are: unix, docker, systemd, k8s');
  });
});

const noSsh = requireTool('ssh-keygen', hasSshKeygen(), 'apt-get install openssh-client');

describe.skipIf(noSsh)('spiffe-agent validate reads the files sshpop loads at start', () => {
  it('a host key that does not match its certificate is reported under host_cert_path with file and line; a matching pair passes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'validate-sshpop-'));
    try {
      const ca = await SSHTestCA.create(dir);
      const a = await ca.issue('a.example.org');
      const b = await ca.issue('b.example.org');
      const conf = (key: string, cert: string) =>
        `${AGENT}plugins {\n  NodeAttestor "sshpop" {\n    plugin_data {\n      host_key_path = "${key}"\n      host_cert_path = "${cert}"\n    }\n  }\n  KeyManager "memory" {}\n  WorkloadAttestor "unix" {}\n}\n`;
      const bad = await validate(conf(a.keyPath, b.certPath));
      expect(bad.code).toBe(1);
      expect(bad.err).toMatch(new RegExp(`${bad.path}:9: plugins\\.NodeAttestor\\.sshpop\\.plugin_data\\.host_cert_path: the host key in ".*" \\(ssh-ed25519 SHA256:[^)]+\\) does not match the key certified by`));
      const good = await validate(conf(a.keyPath, a.certPath));
      expect(good.err).toBe('');
      expect(good.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('spiffe-agent validate reads the files node attestation reads at start', () => {
  it('an x509pop key that does not match its certificate is reported; the matching pair passes', async () => {
    const ca = await makeX509popCA();
    try {
      const a = await ca.issueNode('a');
      const b = await ca.issueNode('b');
      const conf = (key: string, cert: string) =>
        `${AGENT}plugins {\n  NodeAttestor "x509pop" {\n    plugin_data {\n      private_key_path = "${key}"\n      certificate_path = "${cert}"\n    }\n  }\n  KeyManager "memory" {}\n  WorkloadAttestor "unix" {}\n}\n`;
      const bad = await validate(conf(a.privateKeyPath, b.certificatePath));
      expect(bad.code).toBe(1);
      expect(bad.err).toContain('plugins.NodeAttestor.x509pop: nodeattestor(x509pop): unable to load keypair: private key in');
      expect(bad.err).toContain('does not match the certificate in');
      const missing = await validate(conf('/nonexistent/key.pem', a.certificatePath));
      expect(missing.code).toBe(1);
      expect(missing.err).toContain('private_key_path "/nonexistent/key.pem"');
      const good = await validate(conf(a.privateKeyPath, a.certificatePath));
      expect(good.err).toBe('');
      expect(good.code).toBe(0);
    } finally {
      await ca.destroy();
    }
  });

  it('an empty or missing join_token_file is reported under agent.join_token_file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'validate-jt-'));
    try {
      await writeFile(join(dir, 'empty'), '  \n');
      await writeFile(join(dir, 'token'), 'abc\n');
      await writeFile(join(dir, 'bundle.pem'), '');
      const conf = (file: string) =>
        `agent {\n  trust_domain = "example.org"\n  data_dir = "${dir}/data"\n  server_address = "127.0.0.1"\n  insecure_bootstrap = true\n  join_token_file = "${file}"\n}\nplugins {\n  NodeAttestor "join_token" {}\n  KeyManager "memory" {}\n  WorkloadAttestor "unix" {}\n}\n`;
      const empty = await validate(conf(join(dir, 'empty')));
      expect(empty.code, empty.err).toBe(1);
      expect(empty.err).toMatch(/agent\.join_token_file: join token file ".*empty" is empty/);
      const missing = await validate(conf(join(dir, 'nope')));
      expect(missing.code).toBe(1);
      expect(missing.err).toMatch(/agent\.join_token_file: unable to read join token file ".*nope"/);
      const good = await validate(conf(join(dir, 'token')));
      expect(good.err).toBe('');
      expect(good.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
