/** Built-in workload attestors: one literal list, chosen by name from agent.conf. */
import type { PluginConfig } from '../../config/types.js';
import { SpiffeAgentError } from '../../errors.js';
import type { ProcReader } from '../../proc/proc-reader.js';
import type { Logger } from '../../telemetry/logger.js';
import type { WorkloadAttestor } from './types.js';
import { UnixAttestor, parseUnixConfig } from './unix/index.js';

export interface WorkloadAttestorDeps {
  readonly proc: ProcReader;
  readonly log: Logger;
  /** The config file, so plugin_data problems name it. */
  readonly configFile?: string;
}

type Factory = (plugin: PluginConfig, deps: WorkloadAttestorDeps) => WorkloadAttestor;

const BUILT_IN: Readonly<Record<string, Factory>> = {
  unix: (plugin, deps) => new UnixAttestor(parseUnixConfig(plugin, deps.configFile), deps.proc),
};

export function createWorkloadAttestors(plugins: readonly PluginConfig[], deps: WorkloadAttestorDeps): WorkloadAttestor[] {
  const out: WorkloadAttestor[] = [];
  for (const p of plugins) {
    if (p.type !== 'WorkloadAttestor' || !p.enabled) continue;
    const factory = BUILT_IN[p.name];
    if (!factory) {
      throw new SpiffeAgentError(
        'unknown_plugin',
        `catalog: unknown WorkloadAttestor "${p.name}" at ${p.path}; built-in ones are: ${Object.keys(BUILT_IN).join(', ')}`,
      );
    }
    out.push(factory(p, { ...deps, log: deps.log.child({ [`subsystem_name`]: 'workload_attestor', plugin_name: p.name }) }));
  }
  return out;
}
