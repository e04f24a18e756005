/**
 * azure_msi's plugin_data, read as spire-agent v1.13.3's azuremsi plugin reads it: one key,
 * `resource_id` (empty means the default). v1.13.3 has no setting for the metadata endpoint (it
 * always asks 169.254.169.254), so neither has this agent: a key spire-agent would not accept is
 * refused here rather than honoured.
 */
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../../config/plugin-data.js';

export const AZURE_MSI = 'azure_msi';
/** The Azure Resource Manager's service ID: the token's audience unless resource_id says otherwise. */
export const DEFAULT_RESOURCE_ID = 'https://management.azure.com/';

export interface AzureMsiConfig {
  /** The audience the managed-identity token is asked for (the server checks it against its own resource_id). */
  readonly resourceId: string;
}

export function parseAzureMsiConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): AzureMsiConfig {
  const r = new PluginDataReader(plugin, ctx);
  const resourceId = r.string('resource_id', '') || DEFAULT_RESOURCE_ID;
  r.finish();
  return Object.freeze({ resourceId });
}
