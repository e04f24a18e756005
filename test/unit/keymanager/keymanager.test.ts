import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyManager } from '../../../src/keymanager/catalog.js';
import { noTpm } from '../../helpers/no-tpm.js';
import { DiskKeyManager, parseDiskConfig } from '../../../src/keymanager/disk.js';
import { MemoryKeyManager } from '../../../src/keymanager/memory.js';
import { nextAgentSVIDKeyId } from '../../../src/keymanager/types.js';

/** spire-agent v1.13.3's key ids (pkg/agent/plugin/keymanager/svidkeymanager.go), pinned: a data_dir is shared with it. */
const AGENT_SVID_KEY_A = 'agent-svid-A';
const AGENT_SVID_KEY_B = 'agent-svid-B';
import type { PluginConfig } from '../../../src/config/types.js';
import { systemClock } from '../../../src/clock.js';
import { nullLogger } from '../../../src/telemetry/logger.js';

const deps = { log: nullLogger, clock: systemClock, openTpm: noTpm };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'km-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const plugin = (name: string, data: Record<string, unknown> = {}): PluginConfig => ({
  type: 'KeyManager',
  name,
  enabled: true,
  data,
  dataFile: undefined,
  path: `plugins.KeyManager.${name}`,
});

describe('KeyManager', () => {
  it('alternates agent SVID key slots A/B as spire-agent does', async () => {
    const km = new MemoryKeyManager();
    const a = await km.generateKey(nextAgentSVIDKeyId(undefined));
    expect(a.id).toBe(AGENT_SVID_KEY_A);
    const b = await km.generateKey(nextAgentSVIDKeyId(a));
    expect(b.id).toBe(AGENT_SVID_KEY_B);
    expect(nextAgentSVIDKeyId(b)).toBe(AGENT_SVID_KEY_A);
    expect((await km.getKeys()).map((k) => k.id).sort()).toEqual([AGENT_SVID_KEY_A, AGENT_SVID_KEY_B]);
  });

  it('disk writes keys.json as Go MarshalIndent (tab, sorted ids, base64 PKCS#8), 0600, and reloads it', async () => {
    const km = new DiskKeyManager({ directory: dir });
    const b = await km.generateKey(AGENT_SVID_KEY_B);
    const a = await km.generateKey(AGENT_SVID_KEY_A);
    const text = await readFile(join(dir, 'keys.json'), 'utf8');
    expect(text).toMatch(/^\{\n\t"keys": \{\n\t\t"agent-svid-A": "[A-Za-z0-9+/=]+",\n\t\t"agent-svid-B": "[A-Za-z0-9+/=]+"\n\t\}\n\}$/);
    expect((await stat(join(dir, 'keys.json'))).mode & 0o777).toBe(0o600);
    const reloaded = await new DiskKeyManager({ directory: dir }).getKeys();
    const spki = (id: string) => Buffer.from(reloaded.find((k) => k.id === id)!.publicKeySpki).toString('hex');
    expect(spki(AGENT_SVID_KEY_A)).toBe(Buffer.from(a.publicKeySpki).toString('hex'));
    expect(spki(AGENT_SVID_KEY_B)).toBe(Buffer.from(b.publicKeySpki).toString('hex'));
  });

  it('disk requires directory, naming the key', () => {
    expect(() => parseDiskConfig(plugin('disk'), { file: 'agent.conf' })).toThrow(/plugins\.KeyManager\.disk\.plugin_data\.directory: directory must be configured/);
  });

  it('rejects an unknown KeyManager name and a missing KeyManager', async () => {
    await expect(createKeyManager([plugin('vault')], {}, deps)).rejects.toThrow(/unknown KeyManager "vault"/);
    await expect(createKeyManager([], { file: 'agent.conf' }, deps)).rejects.toThrow(/agent\.conf must configure exactly one KeyManager/);
  });

  it('rejects unknown plugin_data keys of memory', async () => {
    await expect(createKeyManager([plugin('memory', { directory: '/x' })], {}, deps)).rejects.toThrow(/directory/);
  });
});
