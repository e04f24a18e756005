/** Built-in key managers: one literal list, chosen by name from plugins { KeyManager "<name>" {} }. */
import type { PluginConfig } from '../config/types.js';
import type { PluginDataReaderOptions } from '../config/plugin-data.js';
import { SpiffeAgentError } from '../errors.js';
import { DiskKeyManager, parseDiskConfig } from './disk.js';
import { MemoryKeyManager, parseMemoryConfig } from './memory.js';
import type { KeyManager } from './types.js';

interface Entry {
  /** Parses plugin_data, throwing ConfigError with every problem; used by `validate` too. */
  readonly parse: (plugin: PluginConfig, ctx?: PluginDataReaderOptions) => unknown;
  readonly create: (plugin: PluginConfig, ctx?: PluginDataReaderOptions) => KeyManager;
}

const BUILT_IN: Readonly<Record<string, Entry>> = {
  disk: { parse: parseDiskConfig, create: (p, f) => new DiskKeyManager(parseDiskConfig(p, f)) },
  memory: { parse: parseMemoryConfig, create: (p, f) => (parseMemoryConfig(p, f), new MemoryKeyManager()) },
};

function enabledKeyManagers(plugins: readonly PluginConfig[]): PluginConfig[] {
  return plugins.filter((p) => p.type === 'KeyManager' && p.enabled);
}

function entryFor(p: PluginConfig): Entry {
  const e = BUILT_IN[p.name];
  if (!e) {
    throw new SpiffeAgentError('unknown_plugin', `catalog: unknown KeyManager "${p.name}" at ${p.path}; built-in ones are: ${Object.keys(BUILT_IN).join(', ')}`);
  }
  return e;
}

/** The one KeyManager spire-agent requires; none or several is a config error naming the file. */
export function createKeyManager(plugins: readonly PluginConfig[], configFile?: string): KeyManager {
  const kms = enabledKeyManagers(plugins);
  if (kms.length !== 1) {
    throw new SpiffeAgentError(
      'keymanager_count',
      `catalog: ${configFile ?? 'the agent config'} must configure exactly one KeyManager (found ${kms.length}); add plugins { KeyManager "disk" { plugin_data { directory = "<data_dir>" } } }`,
    );
  }
  const p = kms[0] as PluginConfig;
  return entryFor(p).create(p, { file: configFile });
}

/** For `validate`: a KeyManager block's name and plugin_data, without touching disk. */
export function checkKeyManagerConfig(p: PluginConfig, ctx: PluginDataReaderOptions = {}): void {
  entryFor(p).parse(p, ctx);
}
