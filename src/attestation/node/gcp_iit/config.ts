/** gcp_iit's plugin_data, read as spire-agent v1.13.3's gcpiit plugin reads it (empty means the default). */
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../../config/plugin-data.js';

export const GCP_IIT = 'gcp_iit';
export const DEFAULT_IDENTITY_TOKEN_HOST = 'metadata.google.internal';
export const DEFAULT_SERVICE_ACCOUNT = 'default';

export interface GcpIitConfig {
  /** host[:port] of the metadata server; always spoken to over plain http, as spire-agent does. */
  readonly identityTokenHost: string;
  readonly serviceAccount: string;
}

export function parseGcpIitConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): GcpIitConfig {
  const r = new PluginDataReader(plugin, ctx);
  const identityTokenHost = r.string('identity_token_host', '') || DEFAULT_IDENTITY_TOKEN_HOST;
  const serviceAccount = r.string('service_account', '') || DEFAULT_SERVICE_ACCOUNT;
  try {
    if (new URL(`http://${identityTokenHost}/`).host === '') throw new Error('no host');
  } catch {
    r.problem('identity_token_host', `${JSON.stringify(identityTokenHost)} is not a host or host:port (for example "metadata.google.internal")`);
  }
  r.finish();
  return Object.freeze({ identityTokenHost, serviceAccount });
}
