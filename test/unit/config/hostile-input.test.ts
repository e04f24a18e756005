/**
 * A config path can name anything: a deeply nested document, a FIFO, a huge file. Each is refused
 * quickly with a ConfigError naming the file, never a crash or a hang.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfigText } from '../../../src/config/load.js';
import type { ConfigError } from '../../../src/config/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'config-hostile-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const deepArray = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('hostile config files', () => {
  it('refuses a 5,000-deep JSON value with a ConfigError naming the file (it used to overflow the stack)', async () => {
    const text = `{\n  "agent": {\n    "trust_domain": ${deepArray(5000)},\n    "data_dir": "/tmp"\n  }\n}\n`;
    const err = await failure(parseConfigText(text, '/etc/spire/agent.json', { expandEnv: false }));
    expect(err.name).toBe('ConfigError');
    expect(err.code).toBe('config_syntax');
    expect(err.problems).toEqual([{ file: '/etc/spire/agent.json', line: 3, key: '', message: 'nested deeper than 64 levels; flatten the configuration' }]);
  });

  it('refuses deep nesting in a plugin_data_file, naming that file', async () => {
    const data = join(dir, 'plugin.json');
    await writeFile(data, `{"x": ${deepArray(5000)}}`);
    const text = `agent {\n  trust_domain = "example.org"\n}\nplugins {\n  KeyManager "memory" {\n    plugin_data_file = "${data}"\n  }\n}\n`;
    const err = await failure(parseConfigText(text, '/etc/spire/agent.conf', { expandEnv: false }));
    expect(err.problems[0]?.message).toContain(`${data}:1: nested deeper than 64 levels`);
  });

  it('refuses deep HCL nesting before running the HCL parser, with the line', async () => {
    const text = `agent {\n  trust_domain = "example.org"\n  x = ${deepArray(5000)}\n}\n`;
    const err = await failure(parseConfigText(text, '/etc/spire/agent.conf', { expandEnv: false }));
    expect(err.problems).toEqual([{ file: '/etc/spire/agent.conf', line: 3, key: '', message: 'nested deeper than 31 levels; flatten the configuration' }]);
  });

  it('accepts nesting well within the limit', async () => {
    const text = `{"agent": {"trust_domain": "example.org"}, "plugins": {"KeyManager": {"memory": {"plugin_data": {"x": ${deepArray(40)}}}}}}`;
    await expect(parseConfigText(text, '/c/agent.json', { expandEnv: false })).resolves.toMatchObject({ agent: { trustDomain: 'example.org' } });
  });

  it('refuses a FIFO as config at once (it used to hang, deaf to SIGTERM)', async () => {
    const fifo = join(dir, 'agent.conf');
    execFileSync('mkfifo', [fifo]);
    // A FIFO with no writer blocks its reader for ever: returning at all is the proof.
    const err = await failure(loadConfig(fifo, { expandEnv: false }));
    expect(err.code).toBe('config_unreadable');
    expect(err.message).toContain(`${fifo}: unable to read configuration: config file ${fifo} is a FIFO (named pipe), not a regular file`);
  });

  it('refuses a config file over 4 MiB, naming the file and the limit', async () => {
    const big = join(dir, 'big.conf');
    await writeFile(big, `agent {\n  trust_domain = "example.org"\n}\n${'#'.repeat(4 << 20)}\n`);
    const err = await failure(loadConfig(big, { expandEnv: false }));
    expect(err.code).toBe('config_unreadable');
    expect(err.message).toContain(`config file ${big} is larger than the limit of 4 MiB`);
  });
});

describe('many unknown keys', () => {
  it('are each reported (how fast, against the same keys parsed, is bench/parse-bounds.mjs\'s to measure)', async () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => [`unknown_setting_number_${i}_x`, 1]);
    const unknown = JSON.stringify({ agent: { trust_domain: 'example.org', ...Object.fromEntries(keys) } });
    const err = await failure(parseConfigText(unknown, '/c/agent.json', { expandEnv: false }));
    expect(err.problems).toHaveLength(10_000);
  }, 120_000);
});
