/**
 * KeyManager "memory": keys live only in this process, as spire-agent's memory plugin. After a
 * restart the stored agent SVID has no key, so the agent attests again (a join token cannot).
 */
import type { PluginConfig } from '../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../config/plugin-data.js';
import { generateP256, type SoftwareKey } from './key-entry.js';
import type { KeyManager, ManagedKey } from './types.js';

export function parseMemoryConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): void {
  new PluginDataReader(plugin, ctx).finish();
}

export class MemoryKeyManager implements KeyManager {
  readonly name = 'memory';
  private readonly keys = new Map<string, SoftwareKey>();

  async generateKey(id: string): Promise<ManagedKey> {
    const key = generateP256(id);
    this.keys.set(id, key);
    return key;
  }

  async getKeys(): Promise<readonly ManagedKey[]> {
    return [...this.keys.values()];
  }
}
