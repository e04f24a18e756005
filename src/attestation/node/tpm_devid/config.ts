/**
 * tpm_devid's plugin_data, with spire-agent v1.13.3's keys (pkg/agent/plugin/nodeattestor/tpmdevid).
 * The three file paths are required; an empty tpm_device_path means auto-detection, which happens
 * when the attestor is created (spire-agent detects at Configure). Passwords default to empty, the
 * value a TPM's hierarchies and a key created without -p have.
 */
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../../config/plugin-data.js';

export const TPM_DEVID = 'tpm_devid';

export interface TpmDevidPasswords {
  readonly devID: string;
  readonly ownerHierarchy: string;
  readonly endorsementHierarchy: string;
}

export interface TpmDevidConfig {
  /** undefined: auto-detect /dev/tpmrm<N>, else /dev/tpm<N>. */
  readonly devicePath: string | undefined;
  readonly devIDCertPath: string;
  readonly devIDPrivPath: string;
  readonly devIDPubPath: string;
  readonly passwords: TpmDevidPasswords;
}

export function parseTpmDevidConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): TpmDevidConfig {
  const r = new PluginDataReader(plugin, ctx);
  const devicePath = r.string('tpm_device_path', '');
  const devIDCertPath = r.string('devid_cert_path', '');
  const devIDPrivPath = r.string('devid_priv_path', '');
  const devIDPubPath = r.string('devid_pub_path', '');
  // Messages as spire-agent's, which operators already know.
  if (devIDCertPath === '') r.problem('devid_cert_path', 'invalid configuration: devid_cert_path is required');
  if (devIDPrivPath === '') r.problem('devid_priv_path', 'invalid configuration: devid_priv_path is required');
  if (devIDPubPath === '') r.problem('devid_pub_path', 'invalid configuration: devid_pub_path is required');
  const passwords = Object.freeze({
    devID: secret(r, 'devid_password'),
    ownerHierarchy: secret(r, 'owner_hierarchy_password'),
    endorsementHierarchy: secret(r, 'endorsement_hierarchy_password'),
  });
  r.finish();
  return Object.freeze({ devicePath: devicePath === '' ? undefined : devicePath, devIDCertPath, devIDPrivPath, devIDPubPath, passwords });
}

/** A password: like string(), but a value of the wrong type is not quoted back into the error. */
function secret(r: PluginDataReader, name: string): string {
  const v = r.raw(name);
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  // HCL1 decodes a number into a string field, as for the other keys.
  if (typeof v === 'number') return String(v);
  r.problem(name, 'expected a string (the value is not shown: it is a password)');
  return '';
}
