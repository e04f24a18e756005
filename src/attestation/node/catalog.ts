/**
 * Built-in node attestors: one literal list, chosen by name from plugins { NodeAttestor "<name>" }.
 * spire-agent's precedence: a join token (join_token, join_token_file or -joinToken) selects the
 * built-in join_token attestor whatever NodeAttestor block is configured; otherwise the one
 * configured NodeAttestor attests.
 */
import { INPUT_LIMITS, readBoundedFile } from '../../storage/bounded-file.js';
import type { PluginConfig } from '../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../config/plugin-data.js';
import { SpiffeAgentError } from '../../errors.js';
import { NodeAttestorError } from './errors.js';
import { JOIN_TOKEN, JoinTokenAttestor } from './join-token/index.js';
import type { NodeAttestor } from './types.js';
import { createX509popAttestor, parseX509popConfig } from './x509pop/index.js';

export interface NodeAttestorDeps {
  /** The config file, so plugin_data problems name it. */
  readonly configFile?: string;
  /** agent.join_token (or -joinToken). */
  readonly joinToken?: string;
  /** agent.join_token_file, read at start as spire-agent does. */
  readonly joinTokenFile?: string;
}

interface Entry {
  /** Parses plugin_data, throwing ConfigError listing every problem; used by `validate`. */
  readonly parse: (plugin: PluginConfig, ctx?: PluginDataReaderOptions) => unknown;
  readonly create: (plugin: PluginConfig, deps: NodeAttestorDeps) => Promise<NodeAttestor>;
}

const BUILT_IN: Readonly<Record<string, Entry>> = {
  // The join_token block has no keys; without a token it fails as spire-agent's does.
  [JOIN_TOKEN]: {
    parse: (p, ctx) => new PluginDataReader(p, ctx).finish(),
    create: async () => new JoinTokenAttestor(''),
  },
  x509pop: { parse: parseX509popConfig, create: (p, d) => createX509popAttestor(parseX509popConfig(p, { file: d.configFile })) },
};

function entryFor(p: PluginConfig): Entry {
  const e = BUILT_IN[p.name];
  if (!e) {
    throw new SpiffeAgentError('unknown_plugin', `catalog: unknown NodeAttestor "${p.name}" at ${p.path}; built-in ones are: ${Object.keys(BUILT_IN).join(', ')}`);
  }
  return e;
}

/** For `validate`: a NodeAttestor block's name and plugin_data, without reading key files. */
export function checkNodeAttestorConfig(p: PluginConfig, ctx: PluginDataReaderOptions = {}): void {
  entryFor(p).parse(p, ctx);
}

/** The join token the agent should use, if any (join_token_file is read and trimmed, as spire-agent does). */
export async function resolveJoinToken(deps: NodeAttestorDeps): Promise<string | undefined> {
  if (deps.joinTokenFile !== undefined && deps.joinTokenFile !== '') {
    let text: string;
    try {
      text = await readBoundedFile(deps.joinTokenFile, { maxBytes: INPUT_LIMITS.token, what: 'join_token_file' });
    } catch (err) {
      throw new NodeAttestorError('node_attestor_config', `nodeattestor(join_token): unable to read join token file ${JSON.stringify(deps.joinTokenFile)}: ${(err as Error).message}`, { cause: err });
    }
    const token = text.trim();
    if (token === '') throw new NodeAttestorError('node_attestor_config', `nodeattestor(join_token): join token file ${JSON.stringify(deps.joinTokenFile)} is empty`);
    return token;
  }
  return deps.joinToken !== undefined && deps.joinToken !== '' ? deps.joinToken : undefined;
}

export async function createNodeAttestor(plugins: readonly PluginConfig[], deps: NodeAttestorDeps): Promise<NodeAttestor> {
  const configured = plugins.filter((p) => p.type === 'NodeAttestor' && p.enabled);
  if (configured.length !== 1) {
    throw new SpiffeAgentError(
      'node_attestor_count',
      `catalog: ${deps.configFile ?? 'the agent config'} must configure exactly one NodeAttestor (found ${configured.length}); add e.g. plugins { NodeAttestor "join_token" { plugin_data {} } }`,
    );
  }
  const p = configured[0] as PluginConfig;
  const entry = entryFor(p);
  const token = await resolveJoinToken(deps);
  if (token !== undefined) {
    // Still validate the configured block, so a typo is reported even when the token wins.
    entry.parse(p, { file: deps.configFile });
    return new JoinTokenAttestor(token);
  }
  return entry.create(p, deps);
}
