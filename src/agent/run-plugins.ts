/**
 * What `run` builds from plugins {} at start (Agent.start calls openRunPlugins), and the checks on
 * plugins {} as a whole that `run` and `validate` share, so that both refuse the same configs with
 * the same file, line and reason (test/unit/cli/commands/validate-run-agree.test.ts feeds every key
 * spire-agent documents to both).
 */
import { NODE_ATTESTORS, createNodeAttestor } from '../attestation/node/catalog.js';
import type { NodeAttestor } from '../attestation/node/types.js';
import { WORKLOAD_ATTESTORS, createWorkloadAttestors } from '../attestation/workload/catalog.js';
import type { WorkloadAttestor } from '../attestation/workload/types.js';
import type { Clock } from '../clock.js';
import { ConfigError, formatProblem, type ConfigProblem } from '../config/errors.js';
import { locateKeys } from '../config/locate.js';
import type { PluginContext } from '../config/plugin-catalog.js';
import type { AgentConfig, PluginConfig } from '../config/types.js';
import { SpiffeAgentError } from '../errors.js';
import { KEY_MANAGERS, createKeyManager } from '../keymanager/catalog.js';
import type { KeyManager } from '../keymanager/types.js';
import type { ProcReader } from '../proc/proc-reader.js';
import type { Logger } from '../telemetry/logger.js';
import type { OpenTpm } from '../tpm/open-tpm.js';

const PLUGIN_TYPES = ['NodeAttestor', 'WorkloadAttestor', 'KeyManager', 'SVIDStore'] as const;

/** Problems about a key of `file`, on the key's line (or its enclosing block's) when the text is known. */
export function problemsIn(file: string, text: string | undefined): (key: string, message: string) => ConfigProblem {
  const locator = text === undefined ? undefined : locateKeys(text);
  return (key, message) => {
    const line = locator?.line(key);
    return line === undefined ? { file, key, message } : { file, line, key, message };
  };
}

/**
 * Blocks no built-in serves: a type spire-agent does not have, and SVIDStore (spiffe-agent has no
 * SVIDStore plugins; accepting the block would leave `store_svid` entries stored nowhere, silently).
 */
export function pluginTypeProblems(plugins: readonly PluginConfig[], file: string, text: string | undefined): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = problemsIn(file, text);
  for (const p of plugins) {
    if (!(PLUGIN_TYPES as readonly string[]).includes(p.type)) {
      problems.push(at(p.path, `unknown plugin type "${p.type}"; spire-agent's are ${PLUGIN_TYPES.join(', ')}`));
    } else if (p.type === 'SVIDStore' && p.enabled) {
      problems.push(at(p.path, `no SVIDStore plugins are built in; remove SVIDStore "${p.name}"`));
    }
  }
  return problems;
}

/** An agent without a workload attestor could answer no workload; both `run` and `validate` refuse it. */
export function requireWorkloadAttestor(config: AgentConfig): void {
  if (!config.plugins.some((p) => p.type === 'WorkloadAttestor' && p.enabled)) {
    throw new SpiffeAgentError('no_workload_attestor', `agent: ${config.source} configures no WorkloadAttestor; add plugins { WorkloadAttestor "unix" { } }`);
  }
}

/**
 * Without server_address nothing attests the node, yet the blocks stay in the file (the sample keeps
 * them so that setting server_address is all it takes to join a server). `run` checks them as
 * `validate` does, so a broken block is refused now rather than on the day the file joins a server.
 */
export async function checkUnusedServerPlugins(config: AgentConfig, ctx: PluginContext, clock: Clock): Promise<void> {
  const problems: ConfigProblem[] = [];
  const at = problemsIn(ctx.file ?? config.source, ctx.text);
  for (const p of [...NODE_ATTESTORS.enabled(config.plugins), ...KEY_MANAGERS.enabled(config.plugins)]) {
    await collectProblems(problems, at, p.path, () => (p.type === 'NodeAttestor' ? NODE_ATTESTORS : KEY_MANAGERS).check(p, ctx, clock));
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * Runs one check and adds its refusal to `problems`: a ConfigError's own problems, or any other
 * SpiffeAgentError as a problem on `key`'s line. Anything else is a bug and propagates.
 */
export async function collectProblems(
  problems: ConfigProblem[],
  at: (key: string, message: string) => ConfigProblem,
  key: string,
  fn: () => void | Promise<void>,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems);
    else if (err instanceof SpiffeAgentError) problems.push(at(key, err.message));
    else throw err;
  }
}

export interface RunPluginDeps {
  readonly proc: ProcReader;
  readonly log: Logger;
  readonly clock: Clock;
  readonly openTpm: OpenTpm;
  /** Server mode: build the NodeAttestor and KeyManager (false when a test injects its own server session). */
  readonly buildServerPlugins: boolean;
}

export interface RunPlugins {
  readonly attestors: WorkloadAttestor[];
  /** Server mode: what attests the node and holds its keys; the caller owns and closes them. */
  readonly server?: { readonly keyManager: KeyManager; readonly nodeAttestor: NodeAttestor };
  /** The Workload API bundle client, loaded only for trust_bundle_spiffe_workload_api. */
  readonly workloadApiBundle?: ((address: string, trustDomain: string) => Promise<Uint8Array[]>) | undefined;
}

/**
 * A plugin that refuses to start says so with the file, line and key of its block, as `validate`
 * words the same refusal; the error keeps its code (bootstrap-retry and the status table read it).
 */
async function locating<T>(at: (key: string, message: string) => ConfigProblem, key: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConfigError || !(err instanceof SpiffeAgentError)) throw err;
    throw new SpiffeAgentError(err.code, formatProblem(at(key, err.message)), { cause: err });
  }
}

/** The one enabled block of a type when there is one, else the type: where a refusal points. */
function keyOf(plugins: readonly PluginConfig[], type: string): string {
  const found = plugins.filter((p) => p.type === type && p.enabled);
  return found.length === 1 ? found[0]!.path : `plugins.${type}`;
}

/** Everything `run` makes of plugins {} (and trust_bundle_spiffe_workload_api) before it serves. */
export async function openRunPlugins(config: AgentConfig, ctx: PluginContext, deps: RunPluginDeps): Promise<RunPlugins> {
  const typeProblems = pluginTypeProblems(config.plugins, config.source, ctx.text);
  if (typeProblems.length > 0) throw new ConfigError(typeProblems);
  const at = problemsIn(config.source, ctx.text);
  await locating(at, 'plugins.WorkloadAttestor', () => requireWorkloadAttestor(config));
  const attestors: WorkloadAttestor[] = [];
  for (const p of WORKLOAD_ATTESTORS.enabled(config.plugins)) {
    attestors.push(...(await locating(at, p.path, () => createWorkloadAttestors([p], ctx, deps))));
  }
  // The Workload API client (the SDK, and through it the certificate library) loads only for this key.
  const wlAddress = config.mode === 'server' ? config.server.trustBundleSpiffeWorkloadApi : undefined;
  const wlBundle = wlAddress !== undefined ? await import('./workload-api-bundle.js') : undefined;
  if (wlBundle && wlAddress !== undefined) {
    const problem = wlBundle.workloadApiAddressProblem(wlAddress);
    if (problem) throw new ConfigError([at('agent.trust_bundle_spiffe_workload_api', problem)]);
  }
  if (config.mode !== 'server') {
    await checkUnusedServerPlugins(config, ctx, deps.clock);
    return { attestors };
  }
  if (!deps.buildServerPlugins) return { attestors, workloadApiBundle: wlBundle?.fetchBundleFromWorkloadApi };
  const hw = { log: deps.log, clock: deps.clock, openTpm: deps.openTpm };
  const keyManager = await locating(at, keyOf(config.plugins, 'KeyManager'), () => createKeyManager(config.plugins, ctx, hw));
  const { joinToken, joinTokenFile } = config.server;
  const nodeAttestor = await locating(at, keyOf(config.plugins, 'NodeAttestor'), () =>
    createNodeAttestor(config.plugins, ctx, { ...hw, joinToken, joinTokenFile }),
  ).catch(async (err: unknown) => {
    await keyManager.close?.();
    throw err;
  });
  return { attestors, server: { keyManager, nodeAttestor }, workloadApiBundle: wlBundle?.fetchBundleFromWorkloadApi };
}
