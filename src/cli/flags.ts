/**
 * Go `flag`-package compatible parsing, because spire-agent users type
 * `-socketPath /x`, `-socketPath=/x` and `--socketPath /x` interchangeably.
 * Parsing stops at the first non-flag argument or at `--`.
 */
import { parseGoDuration } from '../duration.js';
import { SpiffeAgentError } from '../errors.js';

export type FlagKind = 'string' | 'bool' | 'int' | 'duration' | 'strings';

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  readonly usage: string;
  readonly default?: string | boolean | number | readonly string[];
  /** The type word Go's usage prints (`value` for spire's flag.Value flags); else derived from kind. */
  readonly typeName?: string;
}

export type FlagValues = Record<string, string | boolean | number | string[] | undefined>;

declare module '../errors.js' {
  interface ErrorCodes {
    cli: 'usage';
  }
}

export class UsageError extends SpiffeAgentError<'usage'> {
  constructor(message: string) {
    super('usage', message);
  }
}

/** Writers and environment a command runs with; tests pass their own. */
export interface CliIO {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM for long-running commands (run, api watch). */
  readonly signal: AbortSignal;
}

export type Command = (args: string[], io: CliIO) => Promise<number>;

export function parseFlags(args: readonly string[], specs: readonly FlagSpec[]): { values: FlagValues; rest: string[]; set: ReadonlySet<string> } {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values: FlagValues = {};
  // Which flags the user gave (Go's flag.Visit): a default-true bool is only an override when given.
  const set = new Set<string>();
  for (const s of specs) {
    values[s.name] = Array.isArray(s.default) ? [...s.default] : (s.default as FlagValues[string]);
  }
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = byName.get(name);
    if (!spec) throw new UsageError(`flag provided but not defined: -${name}`);
    set.add(name);
    let raw: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (spec.kind === 'bool') {
      if (raw === undefined) values[name] = true;
      else if (['true', '1', 't', 'T', 'TRUE', 'True'].includes(raw)) values[name] = true;
      else if (['false', '0', 'f', 'F', 'FALSE', 'False'].includes(raw)) values[name] = false;
      else throw new UsageError(`invalid boolean value "${raw}" for -${name}`);
      continue;
    }
    if (raw === undefined) {
      if (i + 1 >= args.length) throw new UsageError(`flag needs an argument: -${name}`);
      raw = args[++i]!;
    }
    switch (spec.kind) {
      case 'string':
        values[name] = raw;
        break;
      case 'int': {
        if (!/^-?\d+$/.test(raw)) throw new UsageError(`invalid value "${raw}" for flag -${name}: parse error`);
        values[name] = Number(raw);
        break;
      }
      case 'duration': {
        const ms = parseGoDuration(raw);
        if (ms === undefined) throw new UsageError(`invalid value "${raw}" for flag -${name}: expected a duration like 30s, 5m or 1h`);
        values[name] = ms;
        break;
      }
      case 'strings': {
        const prev = (values[name] as string[] | undefined) ?? [];
        values[name] = [...prev, raw];
        break;
      }
    }
  }
  return { values, rest: args.slice(i), set };
}

/** The help flags Go's flag package and mitchellh/cli answer with usage. */
export const HELP_FLAGS: readonly string[] = ['-h', '-help', '--help'];

/** Go's flag.PrintDefaults type word: none for a bool, `value` for flag.Value flags, else the kind. */
function typeWord(s: FlagSpec): string {
  if (s.typeName !== undefined) return s.typeName;
  if (s.kind === 'bool') return '';
  return s.kind === 'strings' ? 'value' : s.kind;
}

/** Go hides a zero default and quotes only string flags' defaults. */
function defaultText(s: FlagSpec): string {
  const d = s.default;
  if (d === undefined || d === '' || d === false || d === 0 || (Array.isArray(d) && d.length === 0)) return '';
  return ` (default ${s.kind === 'string' && s.typeName === undefined ? JSON.stringify(d) : String(d)})`;
}

/** Go-style usage text: `  -name type\n    \tusage (default ...)`, flags in byte order as Go sorts them. */
export function formatUsage(command: string, specs: readonly FlagSpec[]): string {
  const lines = [`Usage of ${command}:`];
  for (const s of [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const word = typeWord(s);
    lines.push(`  -${s.name}${word ? ' ' + word : ''}`);
    lines.push(`    \t${s.usage}${defaultText(s)}`);
  }
  return lines.join('\n') + '\n';
}
