import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { run } from '../../../../src/cli/commands/validate.js';

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
  it('prints spire-agent\'s success line for a valid file', async () => {
    const t = io();
    expect(await run(['-config', 'conf/agent/agent.conf'], t.io)).toBe(0);
    expect(t.out()).toBe('SPIRE agent configuration file is valid.\n');
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
    const path = await file('agent.conf', 'agent {\n  trust_domain = "$TD"\n}\n');
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
