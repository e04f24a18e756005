/**
 * spire-agent's systemd plugin takes no configuration. `system_bus_address` is ours, for
 * containers that mount the host's bus socket elsewhere and for tests.
 */
import { PluginDataReader } from '../../../config/plugin-data.js';
import type { PluginConfig } from '../../../config/types.js';
import { DEFAULT_SYSTEM_BUS_ADDRESS, parseAddress } from '../../../dbus/address.js';

export interface SystemdAttestorConfig {
  /** A D-Bus address: plugin_data, else DBUS_SYSTEM_BUS_ADDRESS, else the well-known socket. */
  readonly systemBusAddress: string;
}

export function parseSystemdConfig(
  plugin: PluginConfig,
  env: Readonly<Record<string, string | undefined>>,
  opts: { file?: string; text?: string } = {},
): SystemdAttestorConfig {
  const r = new PluginDataReader(plugin, opts);
  const configured = r.optionalString('system_bus_address');
  const fromEnv = env['DBUS_SYSTEM_BUS_ADDRESS'];
  const systemBusAddress = configured ?? (fromEnv ? fromEnv : DEFAULT_SYSTEM_BUS_ADDRESS);
  try {
    parseAddress(systemBusAddress);
  } catch (err) {
    const source = configured !== undefined ? '' : ' (from DBUS_SYSTEM_BUS_ADDRESS)';
    r.problem('system_bus_address', `${(err as Error).message.replace(/^dbus: /, '')}${source}`);
  }
  r.finish();
  return Object.freeze({ systemBusAddress });
}
