import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.js';
import { parseConfigText } from '../../../src/config/load.js';

const FILE = '/etc/spiffe-agent/agent.conf';

async function failure(text: string, file = FILE): Promise<ConfigError> {
  try {
    await parseConfigText(text, file, { expandEnv: false });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const agent = (body: string) => `agent {\n  trust_domain = "example.org"\n${body}\n}\n`;
/** Server-only keys are checked in server mode; these lines come after the body so its line numbers stay put. */
const serverAgent = (body: string) => `agent {\n  trust_domain = "example.org"\n${body}\n  server_address = "spire-server"\n  insecure_bootstrap = true\n}\n`;

describe('every error kind names the file, the line and the dotted key', () => {
  const cases: { name: string; text: string; code: string; problem: { line: number; key: string; message: string } }[] = [
    {
      name: 'a bad duration',
      text: agent('  sync_interval = "soon"'),
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.sync_interval', message: 'expected a duration like "5s", got "soon"' },
    },
    {
      name: 'a number where spire-agent wants a duration string',
      text: agent('  availability_target = 86400'),
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.availability_target', message: 'expected a duration like "5s", got the number 86400 (a number needs a unit: write it as a string like "5s")' },
    },
    {
      name: 'an unknown key, with a spelling hint',
      text: agent('  socket_pth = "/tmp/x.sock"'),
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.socket_pth', message: 'unknown key; did you mean "socket_path"?' },
    },
    {
      name: 'an unknown top-level block',
      text: `${agent('')}server {\n  bind_port = 1\n}\n`,
      code: 'config_invalid',
      problem: { line: 5, key: 'server', message: 'unknown key (check the spelling, or remove it)' },
    },
    {
      name: 'a wrong type',
      text: agent('  log_source_location = "yes"'),
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.log_source_location', message: 'expected true or false, got "yes"' },
    },
    {
      name: 'a bad enum value',
      text: serverAgent('  rebootstrap_mode = "sometimes"'),
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.rebootstrap_mode', message: 'expected one of "never", "auto", "always", got "sometimes"' },
    },
    {
      name: 'a bad log level',
      text: agent('  log_level = "LOUD"'),
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.log_level', message: 'expected one of "trace", "debug", "info", "warn", "error", "fatal", "panic", got "LOUD"' },
    },
    {
      name: 'a negative cache size',
      text: agent('  x509_svid_cache_max_size = -1'),
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.x509_svid_cache_max_size', message: 'must be at least 0, got -1' },
    },
    {
      name: 'a missing trust_domain',
      text: 'agent {\n  log_level = "INFO"\n}\n',
      code: 'config_invalid',
      problem: { line: 1, key: 'agent.trust_domain', message: 'trust_domain must be configured' },
    },
    {
      name: 'a trust_domain with forbidden characters',
      text: 'agent {\n  trust_domain = "Example.org"\n}\n',
      code: 'config_invalid',
      problem: { line: 2, key: 'agent.trust_domain', message: 'could not parse trust_domain: trust domain "Example.org" may only contain lowercase letters, numbers, dots, dashes and underscores' },
    },
    {
      name: 'join_token and join_token_file together',
      text: serverAgent('  join_token = "a"\n  join_token_file = "/t"'),
      code: 'config_invalid',
      problem: { line: 4, key: 'agent.join_token_file', message: 'only one of join_token or join_token_file can be specified, not both' },
    },
    {
      name: 'a server without a bootstrap bundle',
      text: agent('  server_address = "spire-server"'),
      code: 'config_invalid',
      problem: { line: 1, key: 'agent.trust_bundle_path', message: 'trust_bundle_path, trust_bundle_url, or trust_bundle_spiffe_workload_api must be configured unless insecure_bootstrap is set' },
    },
    {
      name: 'an http trust bundle URL',
      text: `agent {\n  trust_domain = "example.org"\n  trust_bundle_url = "http://bundle"\n  server_address = "spire-server"\n}\n`,
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.trust_bundle_url', message: 'trust bundle URL must start with https://' },
    },
    {
      name: 'a server key without server_address',
      text: agent('  join_token = "abc"'),
      code: 'config_invalid',
      problem: {
        line: 3,
        key: 'agent.join_token',
        message: 'join_token applies only when agent.server_address is set; set server_address to join a SPIRE server, or remove join_token to serve from the embedded authority',
      },
    },
    {
      name: 'an embedded_authority block in server mode',
      text: `${serverAgent('')}embedded_authority {\n  entries_file = "/e.json"\n}\n`,
      code: 'config_invalid',
      problem: {
        line: 7,
        key: 'embedded_authority',
        message: 'embedded_authority applies only without agent.server_address; remove the block to join the SPIRE server, or remove server_address to serve from the embedded authority',
      },
    },
    {
      name: 'an availability_target below 24h',
      text: agent('  availability_target = "1h"'),
      code: 'config_invalid',
      problem: { line: 3, key: 'agent.availability_target', message: 'availability_target must be at least 24h' },
    },
    {
      name: 'an unknown key in a plugin block',
      text: `${agent('')}plugins {\n  KeyManager "memory" {\n    plugin_dta {}\n  }\n}\n`,
      code: 'config_invalid',
      problem: { line: 7, key: 'plugins.KeyManager.memory.plugin_dta', message: 'unknown key; did you mean "plugin_data"?' },
    },
    {
      name: 'a non-boolean plugin enabled',
      text: `${agent('')}plugins {\n  KeyManager "memory" {\n    enabled = 1\n  }\n}\n`,
      code: 'config_invalid',
      problem: { line: 7, key: 'plugins.KeyManager.memory.enabled', message: 'expected true or false, got the number 1' },
    },
    {
      name: 'a bad embedded authority key type',
      text: `${agent('')}embedded_authority {\n  ca_key_type = "ed25519"\n}\n`,
      code: 'config_invalid',
      problem: { line: 6, key: 'embedded_authority.ca_key_type', message: 'expected one of "ec-p256", "ec-p384", "rsa-2048", "rsa-4096", got "ed25519"' },
    },
    {
      name: 'an SVID TTL longer than the CA TTL',
      text: `${agent('')}embedded_authority {\n  ca_ttl = "1h"\n  default_x509_svid_ttl = "2h"\n}\n`,
      code: 'config_invalid',
      problem: { line: 7, key: 'embedded_authority.default_x509_svid_ttl', message: 'must be shorter than ca_ttl, or SVIDs would outlive the CA that signed them' },
    },
    {
      name: 'an unknown key in ca_subject',
      text: `${agent('')}embedded_authority {\n  ca_subject {\n    org = "x"\n  }\n}\n`,
      code: 'config_invalid',
      problem: { line: 7, key: 'embedded_authority.ca_subject.org', message: 'unknown key (check the spelling, or remove it)' },
    },
    {
      name: 'a bad health check port',
      text: `${agent('')}health_checks {\n  bind_port = "http"\n}\n`,
      code: 'config_invalid',
      problem: { line: 6, key: 'health_checks.bind_port', message: 'expected an integer, got "http"' },
    },
    {
      name: 'an HCL syntax error',
      text: 'agent {\n  trust_domain = "example.org"\n  log_level = \n}\n',
      code: 'config_syntax',
      problem: { line: 3, key: '', message: expect.stringContaining('syntax error: Invalid expression') as unknown as string },
    },
  ];

  it.each(cases)('reports $name', async ({ text, code, problem }) => {
    const err = await failure(text);
    expect({ code: err.code, problems: err.problems }).toEqual({ code, problems: [{ file: FILE, ...problem }] });
    const where = `${FILE}:${problem.line}: ${problem.key ? `${problem.key}: ` : ''}`;
    expect(err.message).toContain(where);
  });

  it('keeps syntax error lines true to the file after rewriting HCL1 one-line blocks', async () => {
    const err = await failure('plugins {\n  KeyManager "memory" { plugin_data { a = 1 } }\n  WorkloadAttestor "unix" {\n    x = \n  }\n}\n');
    expect(err.problems[0]).toMatchObject({ file: FILE, line: 4, message: expect.stringContaining('syntax error') });
  });

  it('reports a plugin declared twice', async () => {
    const err = await failure(`${agent('')}plugins {\n  KeyManager "memory" {\n  }\n  KeyManager "memory" {\n  }\n}\n`);
    expect(err.problems).toEqual([{ file: FILE, line: 6, key: 'plugins.KeyManager.memory', message: 'declared 2 times; declare it once' }]);
  });

  it('reports a JSON syntax error with its line', async () => {
    const err = await failure('{\n  "agent": {\n    "trust_domain": "example.org",\n  }\n}\n', '/etc/agent.json');
    expect(err.code).toBe('config_syntax');
    expect(err.problems[0]).toMatchObject({ file: '/etc/agent.json', line: 4 });
  });

  it('collects every problem in one error, in file order', async () => {
    const err = await failure(agent('  sync_interval = "soon"\n  log_level = "LOUD"\n  bogus = 1'));
    expect(err.problems.map((p) => [p.line, p.key])).toEqual([
      [3, 'agent.sync_interval'],
      [4, 'agent.log_level'],
      [5, 'agent.bogus'],
    ]);
    expect(err.message.split('\n')).toEqual([
      'config: 3 problems found; fix them and try again',
      `  ${FILE}:3: agent.sync_interval: expected a duration like "5s", got "soon"`,
      `  ${FILE}:4: agent.log_level: expected one of "trace", "debug", "info", "warn", "error", "fatal", "panic", got "LOUD"`,
      `  ${FILE}:5: agent.bogus: unknown key (check the spelling, or remove it)`,
    ]);
  });

  it('locates keys in JSON files too', async () => {
    const err = await failure('{\n  "agent": {\n    "trust_domain": "example.org",\n    "sync_interval": "soon"\n  }\n}\n', '/etc/agent.json');
    expect(err.problems).toEqual([{ file: '/etc/agent.json', line: 4, key: 'agent.sync_interval', message: 'expected a duration like "5s", got "soon"' }]);
  });
});
