/**
 * `spiffe-agent validate`: spire-agent's verb. Loads the config exactly as `run` would and says whether
 * it is valid (plugin_data included: every NodeAttestor, KeyManager and WorkloadAttestor parses its own, as at `run`); on failure lists
 * every problem (file:line: key: message) and exits 1. Beyond spire-agent, it also reads the files `run` refuses to start
 * without (the entries file, federated bundles, the kubelet CA and credentials; see src/agent/input-files.ts).
 * For a valid file it also prints the platform report (src/agent/platform/report.ts) on stdout: a
 * "Platform:" line and a "Warning:" line for a node attestor that cannot work on this node. A warning
 * never makes the file invalid.
 */
import { readFile } from 'node:fs/promises';
import { checkInputFiles } from '../../agent/input-files.js';
import { checkPluginConfigs } from '../../agent/plugin-check.js';
import type { HostProbe } from '../../agent/platform/facts.js';
import { createHostProbe, type HostProbeOptions } from '../../agent/platform/host-probe.js';
import { effectiveNodeAttestor, runPlatformReport, type PlatformReport } from '../../agent/platform/report.js';
import { ConfigError, type ConfigProblem } from '../../config/errors.js';
import { systemClock } from '../../clock.js';
import { loadConfig } from '../../config/load.js';
import { SpiffeAgentError } from '../../errors.js';
import { formatUsage, HELP_FLAGS, parseFlags, UsageError, type CliIO, type Command } from '../flags.js';
import { RUN_FLAGS, runFlagOverrides } from './run-flags.js';

/** spire-agent's validate takes run's flags and applies them as run does. */
const FLAGS = RUN_FLAGS;

export interface ValidateDeps {
  /** What the platform report asks about the host; tests hand in answers. */
  readonly platformProbe?: (o: HostProbeOptions) => HostProbe;
}

export const run: Command = (args, io) => validate(args, io, {});

export async function validate(args: string[], io: CliIO, deps: ValidateDeps): Promise<number> {
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
  // Runs beside the checks, printed only for a valid file (an invalid one prints nothing on stdout, as
  // spire-agent's validate), before the verdict so that the verdict stays the last line.
  let report: { probe: HostProbe; result: Promise<PlatformReport> } | undefined;
  try {
    const config = await loadConfig(String(values['config']), { expandEnv: values['expandEnv'] === true, env: io.env, agentOverrides: runFlagOverrides(values, given) });
    const probe = (deps.platformProbe ?? createHostProbe)({ env: io.env });
    report = { probe, result: runPlatformReport({ probe, attestor: effectiveNodeAttestor(config), clock: systemClock }) };
    // Plugin blocks are checked by the plugins' own parsers, as spire-agent's validate does.
    const text = await readFile(config.source, 'utf8').catch(() => undefined);
    const problems: ConfigProblem[] = [];
    try {
      await checkPluginConfigs(config, config.source, text, io.env, systemClock);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
    // Then the files run reads at start and refuses to start without, read by the same parsers.
    const files = await checkInputFiles(config, text);
    for (const note of files.notes) io.stderr.write(`Note: ${note}\n`);
    problems.push(...files.problems);
    if (problems.length > 0) throw new ConfigError(problems);
  } catch (err) {
    report?.probe.close();
    if (!(err instanceof SpiffeAgentError)) throw err;
    io.stderr.write(`SPIRE agent configuration file is invalid: ${err.message}\n`);
    return 1;
  }
  if (report) {
    const r = await report.result;
    io.stdout.write(`Platform: ${r.line}\n`);
    for (const w of r.warnings) io.stdout.write(`Warning: ${w.message}\n`);
  }
  io.stdout.write('SPIRE agent configuration file is valid.\n');
  return 0;
}
