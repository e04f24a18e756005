/**
 * What `spiffe-agent validate` (and start-up) checks about plugins {} beyond its syntax: every
 * plugin type is one spire-agent has, and every NodeAttestor, KeyManager and WorkloadAttestor
 * block's name and plugin_data are valid, parsed by the same parsers `run` uses, and the files a
 * plugin loads at start are usable (its catalog's `verify`). All problems come back in one
 * ConfigError, with file and line.
 */
import type { Clock } from '../clock.js';
import { checkNodeAttestorConfig } from '../attestation/node/catalog.js';
import { checkWorkloadAttestorConfig } from '../attestation/workload/catalog.js';
import { ConfigError, type ConfigProblem } from '../config/errors.js';
import type { PluginConfig } from '../config/types.js';
import { SpiffeAgentError } from '../errors.js';
import { checkKeyManagerConfig } from '../keymanager/catalog.js';

const PLUGIN_TYPES = ['NodeAttestor', 'WorkloadAttestor', 'KeyManager', 'SVIDStore'] as const;

export async function checkPluginConfigs(
  plugins: readonly PluginConfig[],
  file: string,
  text: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  clock: Clock,
): Promise<void> {
  const problems: ConfigProblem[] = [];
  const collect = async (p: PluginConfig, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else if (err instanceof SpiffeAgentError) problems.push({ file, key: p.path, message: err.message });
      else throw err;
    }
  };
  for (const p of plugins) {
    if (!(PLUGIN_TYPES as readonly string[]).includes(p.type)) {
      problems.push({ file, key: p.path, message: `unknown plugin type "${p.type}"; spire-agent's are ${PLUGIN_TYPES.join(', ')}` });
      continue;
    }
    if (!p.enabled) continue;
    const ctx = { file, text, env };
    if (p.type === 'NodeAttestor') await collect(p, () => checkNodeAttestorConfig(p, ctx, clock));
    if (p.type === 'KeyManager') await collect(p, () => checkKeyManagerConfig(p, ctx, clock));
    if (p.type === 'WorkloadAttestor') await collect(p, () => checkWorkloadAttestorConfig(p, ctx, clock));
    if (p.type === 'SVIDStore') problems.push({ file, key: p.path, message: `no SVIDStore plugins are built in; remove SVIDStore "${p.name}"` });
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
