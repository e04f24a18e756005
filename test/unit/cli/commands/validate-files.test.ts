/**
 * `spiffe-agent validate` refuses what `run` would refuse at start, files included: the entries
 * file, federated bundle files and the k8s attestor's kubelet CA and credentials, read by the same
 * parsers, each problem with its file (and line). What `run` tolerates (an entries file that does
 * not exist yet) passes, with a note.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../../../src/cli/commands/validate.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'validate-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function validate(conf: string): Promise<{ code: number; out: string; err: string; path: string }> {
  const path = join(dir, 'agent.conf');
  await writeFile(path, conf);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await run([`-config=${path}`], { stdout, stderr, env: {}, signal: new AbortController().signal } as never);
  return { code, out, err, path };
}

const conf = (embedded: string, workload = 'WorkloadAttestor "unix" {}') =>
  `agent {\n  trust_domain = "example.org"\n  data_dir = "${dir}/data"\n}\nembedded_authority {\n${embedded}\n}\nplugins {\n  NodeAttestor "join_token" {}\n  KeyManager "memory" {}\n  ${workload}\n}\n`;

const entry = (over: Record<string, unknown> = {}) => ({
  spiffe_id: 'spiffe://example.org/web',
  parent_id: 'spiffe://example.org/spire/agent/x',
  selectors: [{ type: 'unix', value: 'uid:1000' }],
  ...over,
});

describe('spiffe-agent validate checks the files run reads at start', () => {
  it('accepts a valid entries file', async () => {
    const entries = join(dir, 'entries.json');
    await writeFile(entries, JSON.stringify({ entries: [entry()] }));
    const r = await validate(conf(`  entries_file = "${entries}"`));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('refuses an invalid entries file, each problem with the file, line and entry, and exits 1', async () => {
    const entries = join(dir, 'entries.json');
    await writeFile(entries, JSON.stringify({ entries: [entry(), entry({ spiffe_id: 'spiffe://example.org/db', selectors: [] })] }, null, 2));
    const r = await validate(conf(`  entries_file = "${entries}"`));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain('SPIRE agent configuration file is invalid');
    expect(r.err).toMatch(new RegExp(`${entries}:\\d+: entries\\[1\\]\\.selectors: must have at least one selector`));
  });

  it('refuses an entries file that is not JSON, with its line and column', async () => {
    const entries = join(dir, 'entries.json');
    await writeFile(entries, '{\n  "entries": [\n    oops\n  ]\n}\n');
    const r = await validate(conf(`  entries_file = "${entries}"`));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${entries}:3: not valid JSON: line 3, column 5`);
  });

  it('reports the config problems and the file problems together', async () => {
    const entries = join(dir, 'entries.json');
    await writeFile(entries, JSON.stringify({ entries: [entry({ selectors: [] })] }));
    const r = await validate(conf(`  entries_file = "${entries}"`, 'WorkloadAttestor "unix" {\n    plugin_data {\n      bogus = 1\n    }\n  }'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('2 problems');
    expect(r.err).toContain('plugins.WorkloadAttestor.unix.plugin_data.bogus');
    expect(r.err).toContain('entries[0].selectors');
  });

  it('passes an entries file that does not exist yet, as run does, with a note', async () => {
    const r = await validate(conf(`  entries_file = "${dir}/later.json"`));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Platform: cloud=.*\nSPIRE agent configuration file is valid\.\n$/);
    expect(r.err).toContain(`${dir}/later.json: the registration entries file does not exist; the agent will serve no entries until it appears`);
  });

  it('refuses a federated bundle file that is missing or unparsable, and the own trust domain', async () => {
    await writeFile(join(dir, 'bad.bundle'), 'not a bundle');
    const r = await validate(
      conf(`  federated_bundles = {\n    "partner.org" = "${dir}/bad.bundle"\n    "other.org" = "${dir}/missing.bundle"\n    "example.org" = "${dir}/bad.bundle"\n  }`),
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/embedded_authority\.federated_bundles\.partner\.org: .*bad\.bundle.*not valid JSON/);
    expect(r.err).toMatch(/embedded_authority\.federated_bundles\.other\.org: .*missing\.bundle does not exist/);
    expect(r.err).toContain("embedded_authority.federated_bundles.example.org: is this agent's own trust domain");
  });

  it("refuses a k8s attestor whose kubelet CA or token cannot be read, as run's start would", async () => {
    await writeFile(join(dir, 'ca.pem'), 'not a certificate');
    const r = await validate(
      conf('', `WorkloadAttestor "k8s" {\n    plugin_data {\n      kubelet_ca_path = "${dir}/ca.pem"\n      token_path = "${dir}/token"\n    }\n  }`),
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain(`plugins.WorkloadAttestor.k8s: k8s: unable to parse kubelet CA in ${dir}/ca.pem`);
    const anonymous = await validate(
      conf('', 'WorkloadAttestor "k8s" {\n    plugin_data {\n      skip_kubelet_verification = true\n      use_anonymous_authentication = true\n    }\n  }'),
    );
    expect(anonymous.err).toBe('');
    expect(anonymous.code).toBe(0);
  });
});

describe('spiffe-agent validate: trust_bundle_spiffe_workload_api', () => {
  const server = (addr: string) =>
    `agent {\n  trust_domain = "example.org"\n  data_dir = "${dir}/data"\n  server_address = "127.0.0.1"\n  trust_bundle_spiffe_workload_api = "${addr}"\n}\nplugins {\n  NodeAttestor "join_token" {}\n  KeyManager "memory" {}\n  WorkloadAttestor "unix" {}\n}\n`;

  it('accepts a Workload API address (the agent behind it is asked only by run)', async () => {
    const r = await validate(server('unix:///run/parent/api.sock'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('refuses what is not a Workload API address, as run does', async () => {
    const r = await validate(server('http://127.0.0.1:1/x'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/agent\.trust_bundle_spiffe_workload_api: trust_bundle_spiffe_workload_api is not a valid SPIFFE Workload API endpoint address: /);
  });
});
