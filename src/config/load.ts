/**
 * agent.conf → frozen AgentConfig. HCL or JSON by extension, optional `-expandEnv`, and every problem
 * in the file reported at once as a ConfigError (code 'config_invalid') naming file, line and dotted key.
 */
import { resolve } from 'node:path';
import { INPUT_LIMITS, InputFileError, readBoundedFile } from '../storage/bounded-file.js';
import { readAgentSection } from './agent-section.js';
import { ConfigError } from './errors.js';
import { expandEnv } from './expand-env.js';
import { locateKeys } from './locate.js';
import { parseText } from './parse-text.js';
import { readPlugins } from './plugins.js';
import { ObjectReader, ProblemList, unwrapBlock } from './reader.js';
import { readEmbeddedAuthority, readHealthChecks } from './sections.js';
import { readTelemetry } from './telemetry-section.js';
import type { AgentConfig } from './types.js';

export interface LoadOptions {
  /** Replace `$VAR` / `${VAR}` from `env` before parsing, as spire-agent's -expandEnv does. */
  readonly expandEnv: boolean;
  /** Environment for -expandEnv; process.env when absent. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Base for relative plugin_data_file paths; process.cwd() when absent. */
  readonly cwd?: string;
  /**
   * `agent` keys from command-line flags (snake_case, e.g. { trust_domain: "example.org" }), applied over
   * the file before validation, as spire-agent merges flags first: a trust_domain given only by flag is valid.
   */
  readonly agentOverrides?: Readonly<Record<string, unknown>>;
}

export async function loadConfig(path: string, opts: LoadOptions): Promise<AgentConfig> {
  const file = resolve(opts.cwd ?? process.cwd(), path);
  let text: string;
  try {
    text = await readBoundedFile(file, { maxBytes: INPUT_LIMITS.config, what: 'config file' });
  } catch (err) {
    if (err instanceof InputFileError && err.code === 'input_not_found') {
      throw new ConfigError([{ file, key: '', message: 'could not find config file: please use the -config flag' }], 'config_not_found', { cause: err });
    }
    const message = err instanceof InputFileError ? err.message.replace(/^input: /, '') : (err as Error).message;
    throw new ConfigError([{ file, key: '', message: `unable to read configuration: ${message}` }], 'config_unreadable', { cause: err });
  }
  return parseConfigText(text, file, opts);
}

/** `file` names the source in messages and picks the format (".json" → JSON, anything else → HCL). */
export async function parseConfigText(text: string, file: string, opts: LoadOptions): Promise<AgentConfig> {
  const src = opts.expandEnv ? expandEnv(text, opts.env ?? process.env) : text;
  const raw = await parseText(src, file);
  const problems = new ProblemList(file, locateKeys(src));
  const top = new ObjectReader(raw, '', problems);

  const section = (key: string) => {
    const v = top.raw(key);
    if (v === undefined) return undefined;
    const obj = unwrapBlock(v, key, problems);
    return obj ? new ObjectReader(obj, key, problems) : undefined;
  };

  let agentReader = section('agent');
  const overrides = Object.entries(opts.agentOverrides ?? {}).filter(([, v]) => v !== undefined);
  if (overrides.length > 0) {
    agentReader = new ObjectReader({ ...(agentReader?.obj ?? {}), ...Object.fromEntries(overrides) }, 'agent', problems);
  } else if (!agentReader && !top.has('agent')) {
    problems.add('agent', 'agent section must be configured');
  }
  const { agent, server } = readAgentSection(agentReader ?? new ObjectReader({}, 'agent', new ProblemList(file)));
  const serverAddress = server.settings.serverAddress;
  const embeddedReader = section('embedded_authority');
  // Read the block in either mode so its own problems are reported too.
  const embeddedAuthority = readEmbeddedAuthority(embeddedReader);
  if (serverAddress !== undefined) {
    for (const [key, message] of server.problems) problems.add(key, message);
    if (embeddedReader) {
      problems.add('embedded_authority', 'embedded_authority applies only without agent.server_address; remove the block to join the SPIRE server, or remove server_address to serve from the embedded authority');
    }
  } else {
    for (const key of server.present) {
      problems.add(`agent.${key}`, `${key} applies only when agent.server_address is set; set server_address to join a SPIRE server, or remove ${key} to serve from the embedded authority`);
    }
    if (server.settings.requirePqKem) {
      problems.add('agent.experimental.require_pq_kem', 'require_pq_kem applies to the TLS connection to the SPIRE server, and without agent.server_address there is none; remove it or set server_address');
    }
  }
  const healthChecks = readHealthChecks(section('health_checks'));
  const telemetry = readTelemetry(top.raw('telemetry'), problems);
  const pluginsRaw = top.raw('plugins');
  const plugins = pluginsRaw === undefined ? [] : await readPlugins(pluginsRaw, { problems, cwd: opts.cwd ?? process.cwd() });
  top.finish();

  if (problems.items.length > 0) throw new ConfigError(sortProblems(problems.items));
  const base = { source: resolve(opts.cwd ?? process.cwd(), file), agent, plugins: Object.freeze(plugins), healthChecks, telemetry };
  if (serverAddress !== undefined) {
    return Object.freeze({ ...base, mode: 'server', server: Object.freeze({ ...server.settings, serverAddress }) } satisfies AgentConfig);
  }
  return Object.freeze({ ...base, mode: 'embedded', embeddedAuthority } satisfies AgentConfig);
}

function sortProblems<T extends { file: string; line?: number }>(items: T[]): T[] {
  return items
    .map((p, i) => ({ p, i }))
    .sort((a, b) => a.p.file.localeCompare(b.p.file) || (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.i - b.i)
    .map((x) => x.p);
}
