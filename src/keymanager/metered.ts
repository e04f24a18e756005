/** spire-agent's agent_key_manager_{generate_key,get_keys} call metrics around any KeyManager. */
import { statusName, type CallHandle, type Metrics } from '../telemetry/metrics/index.js';
import type { KeyManager } from './types.js';

export function meteredKeyManager(km: KeyManager, metrics: Metrics): KeyManager {
  if (!metrics.enabled) return km;
  const gen = metrics.call(['agent_key_manager', 'generate_key']);
  const get = metrics.call(['agent_key_manager', 'get_keys']);
  const timed = <T>(h: CallHandle, p: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    return p().then(
      (v) => {
        h.done('OK', performance.now() - t0);
        return v;
      },
      (err: unknown) => {
        h.done(statusName(err), performance.now() - t0);
        throw err;
      },
    );
  };
  return {
    name: km.name,
    generateKey: (id) => timed(gen, () => km.generateKey(id)),
    getKeys: () => timed(get, () => km.getKeys()),
    ...(km.close ? { close: () => km.close!() } : {}),
  };
}
