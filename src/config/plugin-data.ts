/**
 * What a plugin uses to read its own plugin_data: typed reads with defaults, every problem collected
 * under its dotted path ("plugins.WorkloadAttestor.unix.plugin_data.workload_size_limit"), unknown keys
 * rejected unless `allowUnknown`, and one ConfigError from finish().
 *
 *   const r = new PluginDataReader(plugin);
 *   const discover = r.bool('discover_workload_path', false);
 *   r.finish();
 */
import { ConfigError } from './errors.js';
import { locateKeys } from './locate.js';
import { ObjectReader, ProblemList } from './reader.js';
import type { PluginConfig } from './types.js';

export interface PluginDataReaderOptions {
  /** Accept keys this plugin does not read (for plugins that pass data through). */
  readonly allowUnknown?: boolean;
  /** The config file the plugin block came from (AgentConfig.source), for messages. */
  readonly file?: string;
  /** That file's text, to put line numbers on problems. */
  readonly text?: string;
}

export class PluginDataReader {
  private readonly r: ObjectReader;
  private readonly problems: ProblemList;
  private readonly allowUnknown: boolean;

  constructor(plugin: Pick<PluginConfig, 'data' | 'path' | 'dataFile'>, opts: PluginDataReaderOptions = {}) {
    const file = plugin.dataFile ?? opts.file ?? '<agent config>';
    // Keys inside a plugin_data_file are located in that file, so the prefix is the file's top level there.
    const text = plugin.dataFile === undefined ? opts.text : undefined;
    this.problems = new ProblemList(file, text === undefined ? undefined : locateKeys(text));
    this.r = new ObjectReader({ ...plugin.data }, `${plugin.path}.plugin_data`, this.problems);
    this.allowUnknown = opts.allowUnknown ?? false;
  }

  /** The dotted key of `name`, for a plugin's own problem() calls. */
  key(name: string): string {
    return this.r.key(name);
  }

  has(name: string): boolean {
    return this.r.has(name);
  }

  bool(name: string, def: boolean): boolean {
    return this.r.bool(name, def);
  }

  int(name: string, def: number, opts?: { min?: number; max?: number }): number {
    return this.r.int(name, def, opts);
  }

  string(name: string, def: string): string {
    return this.r.string(name, def);
  }

  optionalString(name: string): string | undefined {
    return this.r.optionalString(name);
  }

  /** Milliseconds; the default is a Go duration string ("5s"). */
  duration(name: string, def: string): number {
    return this.r.duration(name, def);
  }

  optionalDuration(name: string): number | undefined {
    return this.r.optionalDuration(name);
  }

  stringList(name: string, def: readonly string[] = []): string[] {
    return this.r.stringList(name, def);
  }

  enum<T extends string>(name: string, allowed: readonly T[], def: T): T {
    return this.r.enum(name, allowed, def);
  }

  /** The value as written, for structures a plugin validates itself; marks the key as known. */
  raw(name: string): unknown {
    return this.r.raw(name);
  }

  /** Records a plugin-specific problem (e.g. two keys that exclude each other). */
  problem(name: string, message: string): void {
    this.problems.add(this.r.key(name), message);
  }

  /** Throws ConfigError with every problem found, unknown keys included. */
  finish(): void {
    if (!this.allowUnknown) this.r.finish();
    if (this.problems.items.length > 0) throw new ConfigError(this.problems.items);
  }
}
