/** k8s_psat's plugin_data, read as spire-agent v1.13.3's k8spsat plugin reads it (empty token_path means the default). */
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../../config/plugin-data.js';

export const K8S_PSAT = 'k8s_psat';
/** Where SPIRE's manifests and Helm charts mount the projected token (audience spire-server). */
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/spire-agent';

export interface K8sPsatConfig {
  /** The cluster's name as the server's k8s_psat plugin lists it under `clusters`. */
  readonly cluster: string;
  readonly tokenPath: string;
}

export function parseK8sPsatConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): K8sPsatConfig {
  const r = new PluginDataReader(plugin, ctx);
  const cluster = r.string('cluster', '');
  const tokenPath = r.string('token_path', '') || DEFAULT_TOKEN_PATH;
  if (cluster === '') r.problem('cluster', 'is required: the name of this cluster as the server\'s k8s_psat plugin configures it under clusters = { "<name>" = {...} }');
  r.finish();
  return Object.freeze({ cluster, tokenPath });
}
