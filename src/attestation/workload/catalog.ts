/** Built-in workload attestors: one literal list, chosen by name from agent.conf. */
import type { PluginConfig } from '../../config/types.js';
import { SpiffeAgentError } from '../../errors.js';
import type { ProcReader } from '../../proc/proc-reader.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Clock } from '../../clock.js';
import { createDockerAttestor } from './docker/index.js';
import { createK8sAttestor } from './k8s/index.js';
import { createSystemdAttestor } from './systemd/index.js';
import type { WorkloadAttestor } from './types.js';
import { UnixAttestor, parseUnixConfig } from './unix/index.js';

export interface WorkloadAttestorDeps {
  readonly proc: ProcReader;
  readonly log: Logger;
  readonly clock: Clock;
  /** Environment for node_name_env and bus addresses; passed in, never read at import time. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The config file, so plugin_data problems name it. */
  readonly configFile?: string;
}

type Factory = (plugin: PluginConfig, deps: WorkloadAttestorDeps) => WorkloadAttestor;

const BUILT_IN: Readonly<Record<string, Factory>> = {
  unix: (plugin, deps) => new UnixAttestor(parseUnixConfig(plugin, deps.configFile), deps.proc),
  docker: (plugin, deps) => createDockerAttestor(plugin, { proc: deps.proc, log: deps.log, clock: deps.clock }),
  systemd: (plugin, deps) => createSystemdAttestor(plugin, { log: deps.log, env: { ...deps.env } }),
  k8s: (plugin, deps) => createK8sAttestor(plugin, { proc: deps.proc, log: deps.log, clock: deps.clock, env: { ...deps.env }, file: deps.configFile }),
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
