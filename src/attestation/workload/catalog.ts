/**
 * Built-in workload attestors: one literal list, chosen by name from agent.conf. Each has a
 * `configure` (plugin_data → typed config, every problem with file, line and dotted key) and a
 * `create`; `run` does both and `validate` only the first, so both see exactly the same problems.
 * The config parsers are loaded with the catalog; an attestor's own code only when agent.conf
 * configures it (docker, k8s and systemd are not on the start path of an agent that uses unix).
 */
import type { PluginConfig } from '../../config/types.js';
import { SpiffeAgentError } from '../../errors.js';
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
  /** Environment for node_name_env and bus addresses; passed in, never read at import time. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The config file, so plugin_data problems name it. */
  readonly configFile?: string;
  /** That file's text, so plugin_data problems carry their line. */
  readonly configText?: string;
}

/** What configuring a plugin needs: where its block came from, and the environment some read. */
export interface WorkloadAttestorConfigContext {
  readonly file?: string;
  readonly text?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface BuiltIn<C> {
  configure(plugin: PluginConfig, ctx: WorkloadAttestorConfigContext): C;
  create(config: C, deps: WorkloadAttestorDeps): WorkloadAttestor | Promise<WorkloadAttestor>;
  /** Reads the files `create` would read and refuse to start without; for `validate`. */
  checkFiles?(config: C): Promise<void>;
}

const builtIn = <C>(b: BuiltIn<C>): BuiltIn<unknown> => b as BuiltIn<unknown>;

const BUILT_IN: Readonly<Record<string, BuiltIn<unknown>>> = {
  unix: builtIn({
    configure: (p, c) => parseUnixConfig(p, c.file, c.text),
    create: (config, d) => new UnixAttestor(config, d.proc),
  }),
  docker: builtIn({
    configure: (p, c) => parseDockerConfig(p, { file: c.file, text: c.text }),
    create: async (config, d) => new (await import('./docker/index.js')).DockerAttestor(config, { proc: d.proc, log: d.log, clock: d.clock }),
  }),
  systemd: builtIn({
    configure: (p, c) => parseSystemdConfig(p, c.env, { file: c.file, text: c.text }),
    create: async (config, d) => new (await import('./systemd/index.js')).SystemdAttestor(config, { log: d.log }),
  }),
  k8s: builtIn({
    configure: (p, c) => parseK8sConfig(p, { ...c.env }, { file: c.file, text: c.text }),
    create: async (config, d) => new (await import('./k8s/index.js')).K8sAttestor(config, { proc: d.proc, log: d.log, clock: d.clock, env: { ...d.env }, file: d.configFile }),
    checkFiles: async (config) => {
      if (!config.disableKubeletClient) (await import('./k8s/kubelet-client.js')).checkKubeletFiles(config.kubelet);
    },
  }),
};

function builtInFor(p: PluginConfig): BuiltIn<unknown> {
  const b = BUILT_IN[p.name];
  if (!b) {
    throw new SpiffeAgentError('unknown_plugin', `catalog: unknown WorkloadAttestor "${p.name}" at ${p.path}; built-in ones are: ${Object.keys(BUILT_IN).join(', ')}`);
  }
  return b;
}

/** What `validate` runs: the plugin's own config parser, as `createWorkloadAttestors` runs it. */
export function checkWorkloadAttestorConfig(p: PluginConfig, ctx: WorkloadAttestorConfigContext): void {
  builtInFor(p).configure(p, ctx);
}

/** What else `validate` runs: the plugin reads the files it would read at start (the k8s attestor's kubelet CA and credentials). */
export async function checkWorkloadAttestorFiles(p: PluginConfig, ctx: WorkloadAttestorConfigContext): Promise<void> {
  const b = builtInFor(p);
  await b.checkFiles?.(b.configure(p, ctx));
}

export async function createWorkloadAttestors(plugins: readonly PluginConfig[], deps: WorkloadAttestorDeps): Promise<WorkloadAttestor[]> {
  const out: WorkloadAttestor[] = [];
  for (const p of plugins) {
    if (p.type !== 'WorkloadAttestor' || !p.enabled) continue;
    const b = builtInFor(p);
    const config = b.configure(p, { file: deps.configFile, text: deps.configText, env: deps.env });
    out.push(await b.create(config, { ...deps, log: deps.log.child({ [`subsystem_name`]: 'workload_attestor', plugin_name: p.name }) }));
  }
  return out;
}
