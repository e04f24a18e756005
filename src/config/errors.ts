import { SpiffeAgentError } from '../errors.js';

/** One thing wrong with a configuration, located as precisely as we can. */
export interface ConfigProblem {
  readonly file: string;
  readonly line?: number;
  /** Dotted key, e.g. "agent.sync_interval" or "plugins.WorkloadAttestor.unix.plugin_data.workload_size_limit". */
  readonly key: string;
  readonly message: string;
}

export type ConfigErrorCode = 'config_invalid' | 'config_syntax' | 'config_not_found' | 'config_unreadable';

declare module '../errors.js' {
  interface ErrorCodes {
    config: ConfigErrorCode;
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return p.key ? `${where}: ${p.key}: ${p.message}` : `${where}: ${p.message}`;
}

/**
 * Every problem found in a configuration, reported at once so that a user fixes the file in one pass
 * instead of one restart per typo.
 */
export class ConfigError extends SpiffeAgentError<ConfigErrorCode> {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], code: ConfigErrorCode = 'config_invalid', options?: { cause?: unknown }) {
    const n = problems.length;
    const head = `config: ${n} problem${n === 1 ? '' : 's'} found; fix ${n === 1 ? 'it' : 'them'} and try again`;
    super(code, [head, ...problems.map((p) => `  ${formatProblem(p)}`)].join('\n'), options);
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })));
  }
}
