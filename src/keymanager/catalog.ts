/**
 * Built-in key managers: one literal list, chosen by name from plugins { KeyManager "<name>" {} },
 * in the shape all three catalogs share (src/config/plugin-catalog.ts). The agent builds the one
 * key manager from here and hands it to the session.
 */
import type { Clock } from '../clock.js';
import { PluginCatalog, builtIn, type PluginContext } from '../config/plugin-catalog.js';
import type { PluginConfig } from '../config/types.js';
import type { OpenTpm } from '../tpm/open-tpm.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { DiskKeyManager, parseDiskConfig } from './disk.js';
import { MemoryKeyManager, parseMemoryConfig } from './memory.js';
import { parseTpmKeyManagerConfig, type TpmKeyManagerConfig } from './tpm/config.js';
import type { KeyManager } from './types.js';

/** What a key manager may use besides its plugin_data. */
export interface KeyManagerDeps {
  readonly log: Logger;
  readonly clock: Clock;
  /** How a TPM plugin opens its TPM (src/tpm/open-tpm.ts); the agent passes the real one, tests a simulator's. */
  readonly openTpm: OpenTpm;
}

export const KEY_MANAGERS = new PluginCatalog<KeyManagerDeps, KeyManager>('KeyManager', {
  disk: builtIn({ configure: (p, c) => parseDiskConfig(p, c), create: (config) => new DiskKeyManager(config) }),
  memory: builtIn({ configure: (p, c) => parseMemoryConfig(p, c), create: () => new MemoryKeyManager() }),
  // Loaded on use, like the TPM client it opens: an agent without a TPM key manager loads neither.
  tpm: builtIn<TpmKeyManagerConfig, KeyManagerDeps, KeyManager>({
    configure: (p, c) => parseTpmKeyManagerConfig(p, c),
    verify: async (_p, config) => (await import('./tpm/index.js')).verifyKeyDirectory(config.directory),
    create: async (config, deps) => (await import('./tpm/index.js')).TpmKeyManager.open({ config, openTpm: deps.openTpm, log: deps.log, clock: deps.clock }),
  }),
});

/** What a config without exactly one of these is told to add (run and validate). */
export const KEY_MANAGER_EXAMPLE = 'KeyManager "disk" { plugin_data { directory = "<data_dir>" } }';

/** The one KeyManager spire-agent requires; none or several is a config error naming the file. */
export async function createKeyManager(plugins: readonly PluginConfig[], ctx: PluginContext, deps: KeyManagerDeps): Promise<KeyManager> {
  const p = KEY_MANAGERS.exactlyOne(plugins, ctx, 'keymanager_count', KEY_MANAGER_EXAMPLE);
  return KEY_MANAGERS.create(p, ctx, { ...deps, log: deps.log.child({ [F.subsystem]: 'key_manager', plugin_name: p.name }) });
}

/** For `validate`: a KeyManager block's name and plugin_data, without touching disk. */
export function checkKeyManagerConfig(p: PluginConfig, ctx: PluginContext, clock: Clock): Promise<void> {
  return KEY_MANAGERS.check(p, ctx, clock);
}
