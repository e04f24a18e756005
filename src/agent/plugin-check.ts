/**
 * What `spiffe-agent validate` (and start-up) checks about plugins {} beyond its syntax: every
 * plugin type is one spire-agent has, and every NodeAttestor, KeyManager and WorkloadAttestor
 * block's name and plugin_data are valid, parsed by the same parsers `run` uses, and the files a
 * plugin loads at start are usable (its catalog's `verify`). All problems come back in one
 * ConfigError, with file and line.
 */
import type { Clock } from '../clock.js';
import { NODE_ATTESTOR_EXAMPLE, NODE_ATTESTORS, checkNodeAttestorConfig } from '../attestation/node/catalog.js';
import { checkWorkloadAttestorConfig } from '../attestation/workload/catalog.js';
import { ConfigError, type ConfigProblem } from '../config/errors.js';
import type { AgentConfig } from '../config/types.js';
import { KEY_MANAGER_EXAMPLE, KEY_MANAGERS, checkKeyManagerConfig } from '../keymanager/catalog.js';
import { collectProblems, pluginTypeProblems, problemsIn, requireWorkloadAttestor } from './run-plugins.js';

/**
 * `file`/`text`: the config file and its text, for lines on plugin_data problems. Beyond each block,
 * the checks `run` makes on plugins {} as a whole (./run-plugins.ts): a type with no built-in, no
 * WorkloadAttestor, and, joining a server, not exactly one NodeAttestor and one KeyManager.
 */
export async function checkPluginConfigs(
  config: AgentConfig,
  file: string,
  text: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  clock: Clock,
): Promise<void> {
  const problems: ConfigProblem[] = pluginTypeProblems(config.plugins, file, text);
  const at = problemsIn(file, text);
  const collect = (key: string, fn: () => void | Promise<void>) => collectProblems(problems, at, key, fn);
  const ctx = { file, text, env };
  await collect('plugins.WorkloadAttestor', () => requireWorkloadAttestor(config));
  if (config.mode === 'server') {
    await collect('plugins.NodeAttestor', () => void NODE_ATTESTORS.exactlyOne(config.plugins, ctx, 'node_attestor_count', NODE_ATTESTOR_EXAMPLE));
    await collect('plugins.KeyManager', () => void KEY_MANAGERS.exactlyOne(config.plugins, ctx, 'keymanager_count', KEY_MANAGER_EXAMPLE));
  }
  for (const p of config.plugins) {
    if (!p.enabled) continue;
    if (p.type === 'NodeAttestor') await collect(p.path, () => checkNodeAttestorConfig(p, ctx, clock));
    if (p.type === 'KeyManager') await collect(p.path, () => checkKeyManagerConfig(p, ctx, clock));
    if (p.type === 'WorkloadAttestor') await collect(p.path, () => checkWorkloadAttestorConfig(p, ctx, clock));
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
