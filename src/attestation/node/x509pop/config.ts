/** x509pop's plugin_data, read as spire-agent's x509pop plugin reads it. */
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../../config/plugin-data.js';

export interface X509popConfig {
  readonly privateKeyPath: string;
  readonly certificatePath: string;
  readonly intermediatesPath: string | undefined;
}

export function parseX509popConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): X509popConfig {
  const r = new PluginDataReader(plugin, ctx);
  const privateKeyPath = r.string('private_key_path', '');
  const certificatePath = r.string('certificate_path', '');
  const intermediates = r.optionalString('intermediates_path');
  if (privateKeyPath === '') r.problem('private_key_path', 'private_key_path is required');
  if (certificatePath === '') r.problem('certificate_path', 'certificate_path is required');
  r.finish();
  return Object.freeze({
    privateKeyPath,
    certificatePath,
    intermediatesPath: intermediates !== undefined && intermediates.trim() !== '' ? intermediates : undefined,
  });
}
