/**
 * The one shape of the agent's plugin catalogs (NodeAttestor, KeyManager, WorkloadAttestor):
 * a literal list of built-ins by name, each with
 *   - `configure`: plugin_data → typed config, every problem at once with file, line and dotted key;
 *   - `verify` (optional): looks at what the config points at (key and certificate files) without
 *     keeping anything, so `validate` reports an unusable file before the agent starts;
 *   - `create`: the plugin itself, from its config and the dependencies the agent injects.
 * `run` configures and creates, `validate` configures and verifies, so both see the same
 * problems. The catalog is a value built from a literal list; nothing registers itself.
 */
import type { Clock } from '../clock.js';
import { SpiffeAgentError, type ErrorCode } from '../errors.js';
import type { PluginConfig } from './types.js';

declare module '../errors.js' {
  interface ErrorCodes {
    /** A plugin name that is not built in (any plugin type). */
    pluginCatalog: 'unknown_plugin';
  }
}

/** Where a plugin block came from and what it may read besides its plugin_data. */
export interface PluginContext {
  /** The config file (AgentConfig.source), so problems name it. */
  readonly file?: string;
  /** That file's text, so problems carry their line. */
  readonly text?: string;
  /** The process environment, for plugins that read it; passed in, never read at import time. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface BuiltInPlugin<C, D, P> {
  configure(plugin: PluginConfig, ctx: PluginContext): C;
  /** `clock`: what time it is for what the files hold (a certificate's validity). */
  verify?(plugin: PluginConfig, config: C, ctx: PluginContext, clock: Clock): Promise<void>;
  create(config: C, deps: D, ctx: PluginContext): P | Promise<P>;
}

/** Erases a built-in's config type so built-ins with different configs share one list. */
export function builtIn<C, D, P>(b: BuiltInPlugin<C, D, P>): BuiltInPlugin<unknown, D, P> {
  return b as BuiltInPlugin<unknown, D, P>;
}

export class PluginCatalog<D, P> {
  constructor(
    /** The plugin type as agent.conf spells it: "NodeAttestor". */
    readonly type: string,
    private readonly builtIns: Readonly<Record<string, BuiltInPlugin<unknown, D, P>>>,
  ) {}

  get names(): string[] {
    return Object.keys(this.builtIns);
  }

  /** The enabled blocks of this catalog's type, in file order. */
  enabled(plugins: readonly PluginConfig[]): PluginConfig[] {
    return plugins.filter((p) => p.type === this.type && p.enabled);
  }

  /**
   * The one enabled block of this type (spire-agent requires exactly one NodeAttestor and one
   * KeyManager); none or several is `code`, naming the file and what to add.
   */
  exactlyOne(plugins: readonly PluginConfig[], ctx: PluginContext, code: ErrorCode, example: string): PluginConfig {
    const found = this.enabled(plugins);
    if (found.length !== 1) {
      throw new SpiffeAgentError(
        code,
        `catalog: ${ctx.file ?? 'the agent config'} must configure exactly one ${this.type} (found ${found.length}); add e.g. plugins { ${example} }`,
      );
    }
    return found[0] as PluginConfig;
  }

  /** Parses the block's plugin_data (what `run` does first), throwing ConfigError with every problem. */
  configure(p: PluginConfig, ctx: PluginContext): unknown {
    return this.builtInFor(p).configure(p, ctx);
  }

  /** What `validate` runs: configure, then verify what the config points at. */
  async check(p: PluginConfig, ctx: PluginContext, clock: Clock): Promise<void> {
    const b = this.builtInFor(p);
    const config = b.configure(p, ctx);
    await b.verify?.(p, config, ctx, clock);
  }

  async create(p: PluginConfig, ctx: PluginContext, deps: D): Promise<P> {
    const b = this.builtInFor(p);
    return b.create(b.configure(p, ctx), deps, ctx);
  }

  private builtInFor(p: PluginConfig): BuiltInPlugin<unknown, D, P> {
    const b = Object.hasOwn(this.builtIns, p.name) ? this.builtIns[p.name] : undefined;
    if (!b) {
      throw new SpiffeAgentError('unknown_plugin', `catalog: unknown ${this.type} "${p.name}" at ${p.path}; built-in ones are: ${this.names.join(', ')}`);
    }
    return b;
  }
}
