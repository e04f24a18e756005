/**
 * plugin_data of KeyManager "tpm", in spire's key style (tpm_devid's tpm_device_path and
 * owner_hierarchy_password):
 *
 *   KeyManager "tpm" {
 *     plugin_data {
 *       directory = "/var/lib/spire/agent"     # required: where the sealed key file lives
 *       tpm_device_path = "/dev/tpmrm0"         # optional: auto-detected as tpm_devid does
 *       owner_hierarchy_password = "..."        # optional: when the owner hierarchy has one
 *     }
 *   }
 *
 * Parsing touches neither the disk nor the TPM, so `run` and `validate` report the same problems.
 */
import type { PluginConfig } from '../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../config/plugin-data.js';

export interface TpmKeyManagerConfig {
  readonly directory: string;
  /** undefined: the one TPM under /dev (tpmrm<N> before tpm<N>), as tpm_devid finds it. */
  readonly tpmDevicePath: string | undefined;
  /** The owner hierarchy's authValue, for CreatePrimary of the storage root key; empty when unset. */
  readonly ownerHierarchyPassword: string;
}

export function parseTpmKeyManagerConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): TpmKeyManagerConfig {
  const r = new PluginDataReader(plugin, ctx);
  const directory = r.string('directory', '');
  if (directory === '') r.problem('directory', 'directory must be configured (the TPM-sealed key file is kept there; usually the data_dir)');
  const tpmDevicePath = r.optionalString('tpm_device_path');
  if (tpmDevicePath === '') r.problem('tpm_device_path', 'tpm_device_path is empty; remove it to auto-detect the TPM, or give a device such as /dev/tpmrm0');
  const ownerHierarchyPassword = r.string('owner_hierarchy_password', '');
  // A TPM2B_AUTH holds at most 64 bytes; a TPM may accept fewer (its largest digest), and says so.
  if (Buffer.byteLength(ownerHierarchyPassword, 'utf8') > 64) r.problem('owner_hierarchy_password', 'owner_hierarchy_password is longer than 64 bytes, more than a TPM accepts');
  r.finish();
  return Object.freeze({ directory, tpmDevicePath: tpmDevicePath === '' ? undefined : tpmDevicePath, ownerHierarchyPassword });
}
