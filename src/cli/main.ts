#!/bin/sh
//bin/true; exec node --max-semi-space-size=1 "$0" "$@"
// The line above is sh for the kernel (for node it is a comment): it starts node with
// the agent's flag, 1 MiB young-generation semi-spaces (V8 grows them to 16 MiB otherwise: ≈14 MiB of
// RSS for nothing). sh rather than `env -S`, which busybox's env (Alpine) lacks. Every launcher runs this
// file itself (the bin, the systemd unit, `npm start`, the benches), so all get it;
// test/unit/cli/launcher-flags.test.ts fails if it is dropped. bench/README.md has the numbers.
/** spiffe-agent's command dispatcher: spire-agent's verbs, each in its own module, loaded on demand. */
import { constants } from 'node:os';
import type { CliIO, Command } from './flags.js';

type Loader = () => Promise<{ run: Command }>;

const COMMANDS: ReadonlyArray<readonly [string[], Loader, string]> = [
  [['run'], () => import('./commands/run.js'), 'Runs the agent'],
  [['api', 'fetch', 'x509'], () => import('./commands/api-fetch-x509.js'), 'Fetches X509 SVIDs from the Workload API'],
  [['api', 'fetch', 'jwt'], () => import('./commands/api-fetch-jwt.js'), 'Fetches a JWT SVID from the Workload API'],
  [['api', 'fetch'], () => import('./commands/api-fetch-x509.js'), 'Fetches X509 SVIDs from the Workload API'],
  [['api', 'validate', 'jwt'], () => import('./commands/api-validate-jwt.js'), 'Validates a JWT SVID'],
  [['api', 'watch'], () => import('./commands/api-watch.js'), 'Attaches to the Workload API and prints updates'],
  [['healthcheck'], () => import('./commands/healthcheck.js'), 'Determines agent health status'],
  [['validate'], () => import('./commands/validate.js'), 'Validates a SPIRE agent configuration file'],
];

function usage(): string {
  const lines = ['Usage: spiffe-agent [--version] [--help] <command> [<args>]', '', 'Available commands are:'];
  for (const [words, , help] of COMMANDS) lines.push(`    ${words.join(' ').padEnd(20)} ${help}`);
  return lines.join('\n') + '\n';
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stderr.write(usage());
    return argv.length === 0 ? 127 : 0;
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    io.stdout.write('0.1.0\n');
    return 0;
  }
  // Longest verb match first ("api fetch x509" before "api fetch").
  const found = [...COMMANDS]
    .sort((a, b) => b[0].length - a[0].length)
    .find(([words]) => words.every((w, i) => argv[i] === w));
  if (!found) {
    io.stderr.write(`spiffe-agent: unknown command "${argv.join(' ')}"\n\n${usage()}`);
    return 127;
  }
  const mod = await found[1]();
  return mod.run(argv.slice(found[0].length), io);
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
