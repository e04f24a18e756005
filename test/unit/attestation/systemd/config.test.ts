import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../src/config/errors.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { parseSystemdConfig } from '../../../../src/attestation/workload/systemd/index.js';

function plugin(data: Record<string, unknown>): PluginConfig {
  return { type: 'WorkloadAttestor', name: 'systemd', enabled: true, data, dataFile: undefined, path: 'plugins.WorkloadAttestor.systemd' };
}

describe('systemd plugin_data', () => {
  it.each([
    ['no configuration, as spire-agent', {}, {}, 'unix:path=/var/run/dbus/system_bus_socket'],
    ['DBUS_SYSTEM_BUS_ADDRESS', {}, { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/host/run/dbus/system_bus_socket' }, 'unix:path=/host/run/dbus/system_bus_socket'],
    ['plugin_data over the environment', { system_bus_address: 'unix:path=/a' }, { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/b' }, 'unix:path=/a'],
    ['an empty DBUS_SYSTEM_BUS_ADDRESS as unset', {}, { DBUS_SYSTEM_BUS_ADDRESS: '' }, 'unix:path=/var/run/dbus/system_bus_socket'],
  ])('uses %s', (_name, data, env, want) => {
    expect(parseSystemdConfig(plugin(data), env).systemBusAddress).toBe(want);
  });

  it.each([
    [{ unknown_key: 1 }, /plugins\.WorkloadAttestor\.systemd\.plugin_data\.unknown_key/],
    [{ system_bus_address: 'tcp:host=x,port=1' }, /plugins\.WorkloadAttestor\.systemd\.plugin_data\.system_bus_address: invalid bus address "tcp:host=x,port=1": only unsupported transports \(tcp\)/],
    [{ system_bus_address: 5 }, /plugins\.WorkloadAttestor\.systemd\.plugin_data\.system_bus_address/],
  ])('rejects %j', (data, message) => {
    const err = (() => {
      try {
        parseSystemdConfig(plugin(data), {});
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(message);
  });
});
