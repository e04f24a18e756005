/**
 * `spiffe-agent validate`: spire-agent's verb. Loads the config exactly as `run` would and says whether
 * it is valid (plugin_data included: every NodeAttestor, KeyManager and WorkloadAttestor parses its own, as at `run`); on failure lists
 * every problem (file:line: key: message) and exits 1. Beyond spire-agent, it also reads the files `run` refuses to start
 * without (the entries file, federated bundles, the kubelet CA and credentials; see src/agent/input-files.ts).
 */
import { readFile } from 'node:fs/promises';
import { checkInputFiles } from '../../agent/input-files.js';
import { checkPluginConfigs } from '../../agent/plugin-check.js';
import { ConfigError, type ConfigProblem } from '../../config/errors.js';
import { systemClock } from '../../clock.js';
import { loadConfig } from '../../config/load.js';
import { SpiffeAgentError } from '../../errors.js';
import { formatUsage, HELP_FLAGS, parseFlags, UsageError, type Command } from '../flags.js';
import { RUN_FLAGS, runFlagOverrides } from './run-flags.js';

/** spire-agent's validate takes run's flags and applies them as run does. */
const FLAGS = RUN_FLAGS;

export const run: Command = async (args, io) => {
  if (args.some((a) => HELP_FLAGS.includes(a))) {
    io.stderr.write(formatUsage('validate', FLAGS));
    return 0;
  }
  let values;
  let given: ReadonlySet<string>;
  try {
    ({ values, set: given } = parseFlags(args, FLAGS));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`${err.message}\n${formatUsage('validate', FLAGS)}`);
    return 1;
  }
  try {
    const config = await loadConfig(String(values['config']), { expandEnv: values['expandEnv'] === true, env: io.env, agentOverrides: runFlagOverrides(values, given) });
    // Plugin blocks are checked by the plugins' own parsers, as spire-agent's validate does.
    const text = await readFile(config.source, 'utf8').catch(() => undefined);
    const problems: ConfigProblem[] = [];
    try {
      await checkPluginConfigs(config.plugins, config.source, text, io.env, systemClock);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
    // Then the files run reads at start and refuses to start without, read by the same parsers.
    const files = await checkInputFiles(config);
    for (const note of files.notes) io.stderr.write(`Note: ${note}\n`);
    problems.push(...files.problems);
    if (problems.length > 0) throw new ConfigError(problems);
  } catch (err) {
    if (!(err instanceof SpiffeAgentError)) throw err;
    io.stderr.write(`SPIRE agent configuration file is invalid: ${err.message}\n`);
    return 1;
  }
  io.stdout.write('SPIRE agent configuration file is valid.\n');
  return 0;
};
