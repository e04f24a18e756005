/**
 * `plugins { Type "name" { ... } }` → PluginConfig[], in file order. Accepts the shapes hcl1.ts
 * produces for HCL and the shapes spire-agent users write in JSON:
 *   "plugins": { "Type": [ { "name": { ... } } ] }   and   "plugins": { "Type": { "name": { ... } } }
 * Plugin names are not checked here; the catalog reports names it does not know.
 */
import { INPUT_LIMITS, readBoundedFile } from '../storage/bounded-file.js';
import { resolve } from 'node:path';
import { parseText } from './parse-text.js';
import { ConfigError } from './errors.js';
import { ObjectReader, isPlainObject, describe, unwrapBlock, type ProblemList, type Raw } from './reader.js';
import type { PluginConfig } from './types.js';

interface RawPlugin {
  type: string;
  name: string;
  body: unknown;
}

function collect(plugins: unknown, problems: ProblemList): RawPlugin[] {
  const out: RawPlugin[] = [];
  const typeObjects = Array.isArray(plugins) ? plugins : [plugins];
  for (const typeObj of typeObjects) {
    if (!isPlainObject(typeObj)) {
      problems.add('plugins', `expected a block of plugin types, got ${describe(typeObj)}`);
      continue;
    }
    for (const [type, byName] of Object.entries(typeObj)) {
      const nameObjects = Array.isArray(byName) ? byName : [byName];
      for (const nameObj of nameObjects) {
        if (!isPlainObject(nameObj)) {
          problems.add(`plugins.${type}`, `expected plugin blocks like ${type} "name" { ... }, got ${describe(nameObj)}`);
          continue;
        }
        for (const [name, body] of Object.entries(nameObj)) out.push({ type, name, body });
      }
    }
  }
  return out;
}

/** JSON objects may come in any order; spire-agent keeps file order, which decides attestor order in logs. */
function fileOrder(plugins: RawPlugin[], problems: ProblemList): RawPlugin[] {
  const at = (p: RawPlugin) => problems.lineOf(`plugins.${p.type}.${p.name}`) ?? Number.MAX_SAFE_INTEGER;
  return plugins.map((p) => ({ p, line: at(p) })).sort((a, b) => a.line - b.line).map((x) => x.p);
}

export interface PluginReadContext {
  readonly problems: ProblemList;
  /** Directory relative plugin_data_file paths are resolved against: the agent's working directory, as spire-agent does. */
  readonly cwd: string;
}

export async function readPlugins(plugins: unknown, ctx: PluginReadContext): Promise<PluginConfig[]> {
  const { problems } = ctx;
  const out: PluginConfig[] = [];
  const seen = new Set<string>();
  for (const raw of fileOrder(collect(plugins, problems), problems)) {
    const path = `plugins.${raw.type}.${raw.name}`;
    if (seen.has(path)) problems.add(path, `plugin "${raw.type}"/"${raw.name}" declared more than once`);
    seen.add(path);
    const body = unwrapBlock(raw.body, path, problems);
    if (!body) continue;
    const r = new ObjectReader(body, path, problems);
    const enabled = r.bool('enabled', true);
    // External plugins (go-plugin binaries) cannot run here. Running the built-in of the same name
    // instead would attest with code the operator did not configure, so each key is refused.
    for (const k of ['plugin_cmd', 'plugin_args', 'plugin_checksum'] as const) {
      if (r.has(k)) {
        problems.add(
          `${path}.${k}`,
          `external plugins are not supported by spiffe-agent; remove ${k}${k === 'plugin_cmd' ? ` to use the built-in ${raw.type} "${raw.name}" if there is one` : ''}, or keep spire-agent for this plugin`,
        );
      }
    }
    r.ignore('plugin_cmd', 'plugin_args', 'plugin_checksum');
    const dataRaw = r.raw('plugin_data');
    const dataFile = r.optionalString('plugin_data_file');
    r.finish();
    let data: Raw = {};
    if (dataRaw !== undefined && dataFile !== undefined) {
      problems.add(`${path}.plugin_data_file`, 'only one of plugin_data or plugin_data_file can be set');
    } else if (dataRaw !== undefined) {
      data = pluginData(dataRaw, `${path}.plugin_data`, problems) ?? {};
    } else if (dataFile !== undefined) {
      data = (await readDataFile(resolve(ctx.cwd, dataFile), `${path}.plugin_data_file`, problems)) ?? {};
    }
    out.push(Object.freeze({ type: raw.type, name: raw.name, enabled, data: Object.freeze(data), dataFile, path }));
  }
  return out;
}

function pluginData(v: unknown, key: string, problems: ProblemList): Raw | undefined {
  // HCL1 also allows plugin_data = "" for "no data".
  if (v === '' || v === null) return {};
  if (Array.isArray(v) && v.length === 0) return {};
  return unwrapBlock(v, key, problems);
}

async function readDataFile(file: string, key: string, problems: ProblemList): Promise<Raw | undefined> {
  let text: string;
  try {
    text = await readBoundedFile(file, { maxBytes: INPUT_LIMITS.config, what: 'plugin_data_file' });
  } catch (err) {
    problems.add(key, `unable to read plugin_data_file ${JSON.stringify(file)}: ${(err as Error).message.replace(/^input: /, '')}`);
    return undefined;
  }
  try {
    return await parseText(text, file);
  } catch (err) {
    if (err instanceof ConfigError) for (const p of err.problems) problems.add(key, `${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}`);
    else throw err;
    return undefined;
  }
}
