/**
 * Built-in workload attestors: one literal list, chosen by name from agent.conf. Each has a
 * `configure` (plugin_data → typed config, every problem with file, line and dotted key) and a
 * `create` (src/config/plugin-catalog.ts, the shape all three catalogs share).
 * The config parsers are loaded with the catalog; an attestor's own code only when agent.conf
 * configures it (docker, k8s and systemd are not on the start path of an agent that uses unix).
 */
import type { PluginConfig } from '../../config/types.js';
import { PluginCatalog, builtIn, type PluginContext } from '../../config/plugin-catalog.js';
import type { ProcReader } from '../../proc/proc-reader.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Clock } from '../../clock.js';
import { parseDockerConfig } from './docker/config.js';
import { parseK8sConfig } from './k8s/config.js';
import { parseSystemdConfig } from './systemd/config.js';
import type { WorkloadAttestor } from './types.js';
import { UnixAttestor, parseUnixConfig } from './unix/index.js';

export interface WorkloadAttestorDeps {
  readonly proc: ProcReader;
  readonly log: Logger;
  readonly clock: Clock;
}

const env = (c: PluginContext): Record<string, string | undefined> => ({ ...c.env });

export const WORKLOAD_ATTESTORS = new PluginCatalog<WorkloadAttestorDeps, WorkloadAttestor>('WorkloadAttestor', {
  unix: builtIn({
    configure: (p, c) => parseUnixConfig(p, c.file, c.text),
    create: (config, d) => new UnixAttestor(config, d.proc),
  }),
  docker: builtIn({
    configure: (p, c) => parseDockerConfig(p, { file: c.file, text: c.text }),
    create: async (config, d) => new (await import('./docker/index.js')).DockerAttestor(config, { proc: d.proc, log: d.log, clock: d.clock }),
  }),
  systemd: builtIn({
    configure: (p, c) => parseSystemdConfig(p, env(c), { file: c.file, text: c.text }),
    create: async (config, d) => new (await import('./systemd/index.js')).SystemdAttestor(config, { log: d.log }),
  }),
  k8s: builtIn({
    configure: (p, c) => parseK8sConfig(p, env(c), { file: c.file, text: c.text }),
    create: async (config, d, c) => new (await import('./k8s/index.js')).K8sAttestor(config, { proc: d.proc, log: d.log, clock: d.clock, env: env(c), file: c.file }),
    // validate reads the kubelet CA and credentials run would read and refuse to start without.
    verify: async (_p, config) => {
      if (!config.disableKubeletClient) (await import('./k8s/kubelet-client.js')).checkKubeletFiles(config.kubelet);
    },
  }),
});

/** What `validate` runs: the plugin's own config parser, as `createWorkloadAttestors` runs it, then the files it would read. */
export function checkWorkloadAttestorConfig(p: PluginConfig, ctx: PluginContext, clock: Clock): Promise<void> {
  return WORKLOAD_ATTESTORS.check(p, ctx, clock);
}

/** Every enabled WorkloadAttestor, each with a logger naming it. */
export async function createWorkloadAttestors(plugins: readonly PluginConfig[], ctx: PluginContext, deps: WorkloadAttestorDeps): Promise<WorkloadAttestor[]> {
  const out: WorkloadAttestor[] = [];
  for (const p of WORKLOAD_ATTESTORS.enabled(plugins)) {
    out.push(await WORKLOAD_ATTESTORS.create(p, ctx, { ...deps, log: deps.log.child({ [`subsystem_name`]: 'workload_attestor', plugin_name: p.name }) }));
  }
  return out;
}
