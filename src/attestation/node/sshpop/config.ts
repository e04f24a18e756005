/** sshpop's plugin_data, read as spire-agent's sshpop plugin reads it (pkg/common/plugin/sshpop). */
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../../config/plugin-data.js';

export const SSHPOP = 'sshpop';
export const DEFAULT_HOST_KEY_PATH = '/etc/ssh/ssh_host_rsa_key';
export const DEFAULT_HOST_CERT_PATH = '/etc/ssh/ssh_host_rsa_key-cert.pub';

export interface SshpopConfig {
  readonly hostKeyPath: string;
  readonly hostCertPath: string;
}

/** An empty value means the default, as spire-agent's stringOrDefault has it. */
export function parseSshpopConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): SshpopConfig {
  const r = new PluginDataReader(plugin, ctx);
  const hostKeyPath = r.string('host_key_path', '') || DEFAULT_HOST_KEY_PATH;
  const hostCertPath = r.string('host_cert_path', '') || DEFAULT_HOST_CERT_PATH;
  r.finish();
  return Object.freeze({ hostKeyPath, hostCertPath });
}
