import { describe, expect, it } from 'vitest';
import { PluginCatalog, builtIn, type PluginContext } from '../../../src/config/plugin-catalog.js';
import { PluginDataReader } from '../../../src/config/plugin-data.js';
import { parseConfigText } from '../../../src/config/load.js';
import type { PluginConfig } from '../../../src/config/types.js';
import { KEY_MANAGERS } from '../../../src/keymanager/catalog.js';
import { NODE_ATTESTORS } from '../../../src/attestation/node/catalog.js';
import { WORKLOAD_ATTESTORS } from '../../../src/attestation/workload/catalog.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const plugin = (name: string, data: Record<string, unknown> = {}): PluginConfig => ({ type: 'Thing', name, enabled: true, data, dataFile: undefined, path: `plugins.Thing.${name}` });

interface Deps {
  readonly tag: string;
}

/** A catalog of one built-in that records what it was given, so the test sees what the catalog passes on. */
function recordingCatalog(seen: { verified?: unknown; created?: { config: unknown; deps: Deps; ctx: PluginContext } }) {
  return new PluginCatalog<Deps, string>('Thing', {
    one: builtIn({
      configure: (p, c) => {
        const r = new PluginDataReader(p, c);
        const path = r.string('path', '');
        if (path === '') r.problem('path', 'path is required');
        r.finish();
        return { path };
      },
      verify: async (_p, config, _c, clock) => void (seen.verified = { ...config, now: clock.now() }),
      create: (config, deps, ctx) => ((seen.created = { config, deps, ctx }), `made ${config.path}`),
    }),
  });
}

describe('PluginCatalog (the shape of the NodeAttestor, KeyManager and WorkloadAttestor catalogs)', () => {
  it('creates a plugin from its parsed config with the deps and context the agent passes', async () => {
    const seen: Parameters<typeof recordingCatalog>[0] = {};
    const cat = recordingCatalog(seen);
    const ctx = { file: 'agent.conf', env: { A: 'b' } };
    await expect(cat.create(plugin('one', { path: '/x' }), ctx, { tag: 'deps' })).resolves.toBe('made /x');
    expect(seen.created).toEqual({ config: { path: '/x' }, deps: { tag: 'deps' }, ctx });
    expect(seen.verified).toBeUndefined();
  });

  it('check (what validate runs) configures and verifies, and creates nothing', async () => {
    const seen: Parameters<typeof recordingCatalog>[0] = {};
    await recordingCatalog(seen).check(plugin('one', { path: '/y' }), {}, new FakeClock(1_000));
    expect(seen.verified).toEqual({ path: '/y', now: 1_000 });
    expect(seen.created).toBeUndefined();
  });

  it('a problem carries the file, its line and the dotted key when the context has the text', async () => {
    const text = 'agent {\n  trust_domain = "example.org"\n}\nplugins {\n  Thing "one" {\n    plugin_data {\n      pth = "/x"\n    }\n  }\n}\n';
    const config = await parseConfigText(text, '/etc/agent.conf', { expandEnv: false });
    const p = { ...(config.plugins[0] as PluginConfig), type: 'Thing' };
    await expect(recordingCatalog({}).create(p, { file: '/etc/agent.conf', text }, { tag: '' })).rejects.toThrow(
      /\/etc\/agent\.conf:7: plugins\.Thing\.one\.plugin_data\.pth: unknown key/,
    );
  });

  it('an unknown name lists the built-in ones; exactlyOne names the file and the count', () => {
    const cat = recordingCatalog({});
    expect(() => cat.configure(plugin('two'), {})).toThrow(expect.objectContaining({ code: 'unknown_plugin', message: 'catalog: unknown Thing "two" at plugins.Thing.two; built-in ones are: one' }));
    // An inherited property name is not a built-in.
    expect(() => cat.configure(plugin('toString'), {})).toThrow(/unknown Thing "toString"/);
    expect(() => cat.exactlyOne([plugin('one'), plugin('one')], { file: 'a.conf' }, 'node_attestor_count', 'Thing "one" {}')).toThrow(
      expect.objectContaining({ code: 'node_attestor_count', message: expect.stringMatching(/^catalog: a\.conf must configure exactly one Thing \(found 2\)/) }),
    );
    expect(cat.exactlyOne([{ ...plugin('one'), enabled: false }, plugin('one', { path: '/z' })], {}, 'node_attestor_count', '').data).toEqual({ path: '/z' });
  });

  it('the three catalogs are PluginCatalogs, with their built-ins', () => {
    expect(NODE_ATTESTORS).toBeInstanceOf(PluginCatalog);
    expect(KEY_MANAGERS).toBeInstanceOf(PluginCatalog);
    expect(WORKLOAD_ATTESTORS).toBeInstanceOf(PluginCatalog);
    expect(NODE_ATTESTORS.names).toEqual(['join_token', 'x509pop', 'sshpop', 'tpm_devid', 'http_challenge', 'aws_iid', 'gcp_iit', 'azure_msi']);
    expect(KEY_MANAGERS.names).toEqual(['disk', 'memory', 'tpm']);
    expect(WORKLOAD_ATTESTORS.names).toEqual(['unix', 'docker', 'systemd', 'k8s']);
  });
});
