#!/bin/sh
//bin/true; exec node --max-semi-space-size=1 "$0" "$@"
// The line above is sh for the kernel (for node it is a comment): it starts node with
// the agent's flag, 1 MiB young-generation semi-spaces (V8 grows them to 16 MiB otherwise: ≈14 MiB of
// RSS for nothing). sh rather than `env -S`, which busybox's env (Alpine) lacks. Every launcher runs this
// file itself (the bin, the systemd unit, `npm start`, the benches), so all get it;
// test/unit/cli/launcher-flags.test.ts fails if it is dropped. bench/README.md has the numbers.
/**
 * spiffe-agent's command dispatcher: spire-agent's verbs, each in its own module, loaded on demand,
 * dispatched as spire-agent's mitchellh/cli does: `-h`/`-help`/`--help` anywhere before `--` asks
 * for the verb's help (exit 0); a group (`api`, `debug`, `logger`, `api validate`) lists its
 * subcommands, exit 1 bare and 0 with -h; an unknown verb gets the top-level list, exit 127. All
 * help goes to stderr, as spire-agent's does. Beyond spire-agent: `help [verb...]` (spire-agent
 * answers it with the top-level list and exit 127).
 */
import { constants } from 'node:os';
import { agentVersion } from '../agent/version.js';
import { HELP_FLAGS, type CliIO, type Command } from './flags.js';

type Loader = () => Promise<{ run: Command }>;

/** Verb → module and synopsis (spire-agent's words where it has the verb). */
const COMMANDS: ReadonlyMap<string, readonly [Loader, string]> = new Map([
  ['run', [() => import('./commands/run.js'), 'Runs the agent']],
  ['api fetch', [() => import('./commands/api-fetch-x509.js'), 'Fetches X509 SVIDs from the Workload API']],
  ['api fetch x509', [() => import('./commands/api-fetch-x509.js'), 'Fetches X509 SVIDs from the Workload API']],
  ['api fetch jwt', [() => import('./commands/api-fetch-jwt.js'), 'Fetches a JWT SVID from the Workload API']],
  ['api validate jwt', [() => import('./commands/api-validate-jwt.js'), 'Validates a JWT SVID']],
  ['api watch', [() => import('./commands/api-watch.js'), "Attaches to the Workload API and prints updates as they're received"]],
  ['debug getinfo', [() => import('./commands/debug-getinfo.js'), 'Prints debug information about the agent']],
  ['healthcheck', [() => import('./commands/healthcheck.js'), 'Determines agent health status']],
  ['logger get', [() => import('./commands/logger.js').then((m) => ({ run: m.get })), 'Gets the logger details']],
  ['logger set', [() => import('./commands/logger.js').then((m) => ({ run: m.set })), 'Sets the logger details']],
  ['logger reset', [() => import('./commands/logger.js').then((m) => ({ run: m.reset })), 'Reset the logger details to launch level']],
  ['validate', [() => import('./commands/validate.js'), 'Validates a SPIRE agent configuration file']],
] as const);

/** Every prefix of a verb that is not a verb itself is a group (mitchellh/cli adds these too). */
const GROUPS: ReadonlySet<string> = new Set(
  [...COMMANDS.keys()].flatMap((k) => k.split(' ').slice(0, -1).map((_, i, w) => w.slice(0, i + 1).join(' '))).filter((k) => !COMMANDS.has(k)),
);

const GROUP_HELP = 'This command is accessed by using one of the subcommands below.';

/** Synopsis of a verb; a group has none, as in spire-agent's list. */
const synopsis = (key: string): string => COMMANDS.get(key)?.[1] ?? '';

/** The verbs and groups one level below `prefix` ('' for the top level). */
function children(prefix: string): string[] {
  const depth = prefix === '' ? 1 : prefix.split(' ').length + 1;
  return [...COMMANDS.keys(), ...GROUPS].filter((k) => k.split(' ').length === depth && (prefix === '' || k.startsWith(prefix + ' '))).sort();
}

function topUsage(): string {
  const keys = children('');
  const width = Math.max(...keys.map((k) => k.length));
  const lines = ['Usage: spiffe-agent [--version] [--help] <command> [<args>]', '', 'Available commands are:'];
  for (const k of keys) lines.push(`    ${k.padEnd(width)}    ${synopsis(k)}`);
  return lines.join('\n') + '\n\n';
}

/** mitchellh/cli's subcommand list: last word, padded by the full key's length as it pads it. */
function subcommandList(prefix: string): string {
  const keys = children(prefix);
  if (keys.length === 0) return '';
  const longest = Math.max(...keys.map((k) => k.length));
  const rows = keys.map((k) => `    ${k.slice(k.lastIndexOf(' ') + 1)}${' '.repeat(longest - k.length)}    ${synopsis(k)}`);
  return `\nSubcommands:\n${rows.join('\n')}\n`;
}

/** The verb's own usage (its module answers -h) followed by its subcommands, if any. */
async function commandHelp(key: string, io: CliIO): Promise<void> {
  const cmd = COMMANDS.get(key);
  if (cmd) {
    const mod = await cmd[0]();
    await mod.run(['-h'], io);
  } else {
    io.stderr.write(`${GROUP_HELP}\n`);
  }
  io.stderr.write(subcommandList(key));
}

/** The longest verb or group that the words starting at `from` spell, as mitchellh/cli's LongestPrefix. */
function longestKey(words: readonly string[], from: number): string | undefined {
  for (let n = words.length - from; n > 0; n--) {
    const key = words.slice(from, from + n).join(' ');
    if (COMMANDS.has(key) || GROUPS.has(key)) return key;
  }
  return undefined;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const end = argv.indexOf('--');
  const head = end < 0 ? argv : argv.slice(0, end);
  const help = head.some((a) => HELP_FLAGS.includes(a));
  const start = argv.findIndex((a, i) => (end < 0 || i < end) && a !== '' && !a.startsWith('-'));
  const topFlags = (start < 0 ? head : argv.slice(0, start)).filter((a) => a.startsWith('-') && !HELP_FLAGS.includes(a));
  const version = topFlags.some((a) => ['-v', '-version', '--version'].includes(a));
  if (version) {
    io.stderr.write(`${agentVersion()}\n`);
    return 0;
  }
  if (start < 0) {
    io.stderr.write(topUsage());
    return help ? 0 : 127;
  }
  // Ours: `help <verb...>` is `<verb...> -h`; `help` alone is `-h`.
  if (argv[start] === 'help' && start === 0) {
    const key = longestKey(argv, 1);
    if (argv.length === 1) {
      io.stderr.write(topUsage());
      return 0;
    }
    if (!key || argv.slice(1).join(' ') !== key) {
      io.stderr.write(topUsage());
      return 127;
    }
    await commandHelp(key, io);
    return 0;
  }
  if (argv[start] === 'version' && start === 0 && argv.length === 1) {
    io.stdout.write(`${agentVersion()}\n`);
    return 0;
  }
  const key = longestKey(argv, start);
  if (!key) {
    io.stderr.write(topUsage());
    return 127;
  }
  if (help) {
    await commandHelp(key, io);
    return 0;
  }
  if (topFlags.length > 0) {
    io.stderr.write('Invalid flags before the subcommand. If these flags are for\nthe subcommand, please put them after the subcommand.\n\n');
    await commandHelp(key, io);
    return 1;
  }
  const cmd = COMMANDS.get(key);
  if (!cmd) {
    // A group run bare: its help, exit 1 (mitchellh/cli's RunResultHelp).
    await commandHelp(key, io);
    return 1;
  }
  const mod = await cmd[0]();
  return mod.run(argv.slice(start + key.split(' ').length), io);
}

/**
 * The first SIGINT or SIGTERM asks for a graceful stop (bounded by shutdown_grace_period for
 * `run`); an operator who signals again wants out now, whatever is still open.
 */
function stopOnSignals(controller: AbortController): void {
  let signalled = false;
  const stop = (sig: NodeJS.Signals): void => {
    if (signalled) {
      process.stderr.write(`spiffe-agent: ${sig} received again; exiting without waiting for shutdown to finish\n`);
      process.exit(128 + (constants.signals[sig] ?? 15));
    }
    signalled = true;
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${(await import('node:fs')).realpathSync(process.argv[1])}`).href;
if (isEntry) {
  const controller = new AbortController();
  stopOnSignals(controller);
  const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal });
  process.exitCode = code;
  // Long-running commands end by themselves; one-shot commands should not wait on idle handles.
  setTimeout(() => process.exit(code), 3000).unref();
}
