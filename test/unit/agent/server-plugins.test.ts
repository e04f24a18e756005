/**
 * In server mode the agent (not the session) builds the NodeAttestor and the KeyManager from
 * their catalogs, with the config file's text: a plugin_data problem found at `run` names the
 * file, the line and the dotted key, as `validate` does, and before any server is contacted.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../../src/agent/agent.js';
import { loadConfig } from '../../../src/config/load.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { FakeClock } from '../../helpers/fake-clock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'server-plugins-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function startWith(plugins: string, agentExtra = ''): Promise<unknown> {
  const path = join(dir, 'agent.conf');
  // Port 1 on loopback: nothing listens there, and nothing may try before the plugins are built.
  await writeFile(
    path,
    `agent {\n  trust_domain = "example.org"\n  data_dir = "${dir}/data"\n  socket_path = "${dir}/api.sock"\n  server_address = "127.0.0.1"\n  server_port = 1\n  insecure_bootstrap = true\n${agentExtra}}\nplugins {\n${plugins}  WorkloadAttestor "unix" { plugin_data {} }\n}\n`,
  );
  const config = await loadConfig(path, { expandEnv: false });
  const agent = new Agent({ config, log: nullLogger, clock: new FakeClock(), env: {} });
  try {
    await agent.start(new AbortController().signal);
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await agent.close();
  }
}

describe('agent: server-mode plugins come from their catalogs', () => {
  it('a NodeAttestor plugin_data problem names file and line at run, not only in validate', async () => {
    const err = await startWith('  NodeAttestor "x509pop" {\n    plugin_data {\n      private_key_pth = "/k"\n    }\n  }\n  KeyManager "memory" { plugin_data {} }\n');
    expect(err).toMatchObject({ code: 'config_invalid' });
    expect((err as Error).message).toContain(`${join(dir, 'agent.conf')}:12: plugins.NodeAttestor.x509pop.plugin_data.private_key_pth: unknown key`);
  });

  it('a KeyManager plugin_data problem names file and line at run', async () => {
    const err = await startWith('  NodeAttestor "join_token" { plugin_data {} }\n  KeyManager "disk" {\n    plugin_data {\n      dir = "/x"\n    }\n  }\n', '  join_token = "t"\n');
    expect((err as Error).message).toContain(`${join(dir, 'agent.conf')}:14: plugins.KeyManager.disk.plugin_data.dir: unknown key`);
  });

  it('a join_token_file that cannot be read stops the start with node_attestor_config', async () => {
    const err = await startWith('  NodeAttestor "join_token" { plugin_data {} }\n  KeyManager "memory" { plugin_data {} }\n', `  join_token_file = "${dir}/missing"\n`);
    expect(err).toMatchObject({ code: 'node_attestor_config', message: expect.stringContaining('unable to read join token file') });
  });
});
