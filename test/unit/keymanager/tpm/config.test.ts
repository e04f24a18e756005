/**
 * plugin_data of KeyManager "tpm": spire's key names, every problem at once with file, line and
 * dotted key, unknown keys refused; and `validate` (the catalog's check) on the directory.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { parseConfigText } from '../../../../src/config/load.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { KEY_MANAGERS, checkKeyManagerConfig } from '../../../../src/keymanager/catalog.js';
import { parseTpmKeyManagerConfig } from '../../../../src/keymanager/tpm/config.js';
import { KEY_FILE, encodeKeyFile } from '../../../../src/keymanager/tpm/key-file.js';

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'KeyManager', name: 'tpm', enabled: true, data, dataFile: undefined, path: 'plugins.KeyManager.tpm' });

async function fromText(pluginData: string): Promise<{ p: PluginConfig; text: string }> {
  const text = `agent {\n  trust_domain = "example.org"\n}\nplugins {\n  KeyManager "tpm" {\n    plugin_data {\n${pluginData}\n    }\n  }\n}\n`;
  const config = await parseConfigText(text, '/etc/agent.conf', { expandEnv: false });
  return { p: config.plugins[0] as PluginConfig, text };
}

describe('KeyManager "tpm" plugin_data', () => {
  it('reads directory, tpm_device_path and owner_hierarchy_password, into a frozen config', () => {
    const c = parseTpmKeyManagerConfig(plugin({ directory: '/var/lib/spire/agent', tpm_device_path: '/dev/tpmrm0', owner_hierarchy_password: 'owner' }));
    expect(c).toEqual({ directory: '/var/lib/spire/agent', tpmDevicePath: '/dev/tpmrm0', ownerHierarchyPassword: 'owner' });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('leaves the device to auto-detection and the owner password empty when they are not set', () => {
    expect(parseTpmKeyManagerConfig(plugin({ directory: '/d' }))).toEqual({ directory: '/d', tpmDevicePath: undefined, ownerHierarchyPassword: '' });
  });

  it.each([
    ['no directory', '      tpm_device_path = "/dev/tpmrm0"', /agent\.conf:6: plugins\.KeyManager\.tpm\.plugin_data\.directory: directory must be configured/],
    ['an unknown key, with its line', '      directory = "/d"\n      devid_password = "x"', /agent\.conf:8: plugins\.KeyManager\.tpm\.plugin_data\.devid_password: unknown key/],
    ['an empty tpm_device_path', '      directory = "/d"\n      tpm_device_path = ""', /agent\.conf:8: plugins\.KeyManager\.tpm\.plugin_data\.tpm_device_path: tpm_device_path is empty; remove it to auto-detect/],
    ['a password longer than a TPM2B_AUTH', `      directory = "/d"\n      owner_hierarchy_password = "${'x'.repeat(65)}"`, /owner_hierarchy_password: owner_hierarchy_password is longer than 64 bytes/],
    ['a directory that is a list', '      directory = ["/a", "/b"]', /agent\.conf:7: plugins\.KeyManager\.tpm\.plugin_data\.directory: /],
  ])('%s is a config error naming the file and key', async (_name, data, message) => {
    const { p, text } = await fromText(data);
    expect(() => KEY_MANAGERS.configure(p, { file: '/etc/agent.conf', text })).toThrow(expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(message) }));
  });

  it('reports every problem at once', async () => {
    const { p, text } = await fromText('      tpm_device_path = ""\n      typo = 1');
    const err = (() => {
      try {
        KEY_MANAGERS.configure(p, { file: '/etc/agent.conf', text });
      } catch (e) {
        return e as { problems: { key: string }[] };
      }
      throw new Error('no error');
    })();
    expect(err.problems.map((x) => x.key).sort()).toEqual(['plugins.KeyManager.tpm.plugin_data.directory', 'plugins.KeyManager.tpm.plugin_data.tpm_device_path', 'plugins.KeyManager.tpm.plugin_data.typo']);
  });
});

describe('validate with KeyManager "tpm" (no TPM needed)', () => {
  let dir: string;
  const clock = new FakeClock(0);
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'km-tpm-validate-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const good = () => encodeKeyFile({ srkName: Buffer.from('000b' + '11'.repeat(32), 'hex'), keys: [{ id: 'agent-svid-A', spki: Buffer.from([1]), public: Buffer.from([2]), private: Buffer.from([3]) }] });

  it('accepts a directory that does not exist yet, an empty one, and a sane key file', async () => {
    await expect(checkKeyManagerConfig(plugin({ directory: join(dir, 'not-yet') }), {}, clock)).resolves.toBeUndefined();
    await expect(checkKeyManagerConfig(plugin({ directory: dir }), {}, clock)).resolves.toBeUndefined();
    await writeFile(join(dir, KEY_FILE), good(), { mode: 0o600 });
    await expect(checkKeyManagerConfig(plugin({ directory: dir }), {}, clock)).resolves.toBeUndefined();
  });

  it('refuses a truncated key file, a file where the directory should be, and a key file others can read', async () => {
    await writeFile(join(dir, KEY_FILE), good().subarray(0, 40), { mode: 0o600 });
    await expect(checkKeyManagerConfig(plugin({ directory: dir }), {}, clock)).rejects.toMatchObject({ code: 'keymanager_corrupt', message: expect.stringMatching(/checksum mismatch|truncated/) });
    await writeFile(join(dir, KEY_FILE), good());
    await chmod(join(dir, KEY_FILE), 0o644);
    await expect(checkKeyManagerConfig(plugin({ directory: dir }), {}, clock)).rejects.toMatchObject({ code: 'keymanager_corrupt', message: expect.stringMatching(/has mode 0644; .* chmod 600/) });
    await expect(checkKeyManagerConfig(plugin({ directory: join(dir, KEY_FILE) }), {}, clock)).rejects.toMatchObject({ message: expect.stringMatching(/is not a directory/) });
  });
});
