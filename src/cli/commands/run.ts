/** `spiffe-agent run`: spire-agent's flags, then the agent in the foreground until SIGINT/SIGTERM. */
import { Agent } from '../../agent/agent.js';
import { systemClock } from '../../clock.js';
import { loadConfig } from '../../config/load.js';
import type { AgentConfig } from '../../config/types.js';
import { SpiffeAgentError } from '../../errors.js';
import { createControlledLogger, type Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { loadSdCalls } from '../../proc/sd-daemon.js';
import { SdNotifier } from '../../proc/sd-notifier.js';
import { formatUsage, HELP_FLAGS, parseFlags, UsageError, type CliIO, type Command } from '../flags.js';
import { RUN_FLAGS, runFlagOverrides } from './run-flags.js';

/** Kept for callers that import it from here; the table lives in run-flags.ts, shared with `validate`. */
export { runFlagOverrides } from './run-flags.js';

export const run: Command = async (args: string[], io: CliIO) => {
  let config: AgentConfig;
  try {
    if (args.some((x) => HELP_FLAGS.includes(x))) {
      // Go's flag package: usage, then run.go prints the parse error; exit 0 (mitchellh/cli's help).
      io.stderr.write(`${formatUsage('run', RUN_FLAGS)}flag: help requested\n`);
      return 0;
    }
    const { values, set } = parseFlags(args, RUN_FLAGS);
    config = await loadConfig(values.config as string, {
      expandEnv: values.expandEnv === true,
      env: io.env,
      agentOverrides: runFlagOverrides(values, set),
    });
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n`);
    if (err instanceof UsageError) io.stderr.write(formatUsage('run', RUN_FLAGS));
    return 1;
  }
  const a = config.agent;
  const { log, level, audit, flush } = createControlledLogger({
    level: a.logLevel,
    format: a.logFormat,
    file: a.logFile,
    destination: io.stderr,
    sourceLocation: a.logSourceLocation,
    batch: true,
  });
  let fatal: ((err: Error) => void) | undefined;
  const fatalError = new Promise<Error>((resolve) => (fatal = resolve));
  const agent = new Agent({
    config,
    log,
    logLevel: level,
    auditLog: audit,
    clock: systemClock,
    procRoot: io.env.HOST_PROC || undefined,
    env: io.env,
    onFatal: (err) => fatal?.(err),
  });
  const onHup = (): void => {
    log.info('Received SIGHUP; reloading registration entries');
    agent.reload().catch((err: Error) => log.error({ [F.error]: err.message }, 'Reload failed; keeping the previous entries'));
  };
  process.on('SIGHUP', onHup);
  // Type=notify: systemd counts the unit started at READY=1, sent once the first sync is done and the socket serves.
  const notifier = new SdNotifier({ env: io.env, pid: process.pid, log, calls: loadSdCalls });
  try {
    // A fatal error during start (e.g. banned at the first sync) wins over a slow start.
    const early = await Promise.race([agent.start(io.signal).then(() => undefined), fatalError]);
    if (early) throw early;
    notifier.ready(`Serving the Workload API on ${a.socketPath}`);
    const stopped = new Promise<undefined>((resolve) => {
      if (io.signal.aborted) resolve(undefined);
      io.signal.addEventListener('abort', () => resolve(undefined), { once: true });
    });
    const err = await Promise.race([stopped, fatalError]);
    if (err) throw err;
    log.info('Shutting down');
    return 0;
  } catch (err) {
    const msg = err instanceof SpiffeAgentError || err instanceof Error ? err.message : String(err);
    log.error({ [F.error]: msg }, 'Agent failed');
    flush();
    io.stderr.write(`${msg}\n`);
    return 1;
  } finally {
    process.off('SIGHUP', onHup);
    notifier.stopping();
    await closeWithin(agent, a.shutdownGracePeriodMs + CLOSE_MARGIN_MS, log);
    flush();
    process.off('exit', flush);
  }
};

/** Beyond the grace period, what stopping the cache, attestors and authority may take. */
const CLOSE_MARGIN_MS = 5000;

/**
 * Shutdown must finish even if some component hangs on close; the process exits soon
 * after `run` returns (src/cli/main.ts), whatever handles are left.
 */
async function closeWithin(agent: Agent, limitMs: number, log: Logger): Promise<void> {
  let cancel: (() => void) | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    cancel = systemClock.setTimer(limitMs, () => resolve('expired'));
  });
  const closed = agent.close().then(
    () => 'closed' as const,
    (err: Error) => {
      log.error({ [F.error]: err.message }, 'Shutdown failed');
      return 'closed' as const;
    },
  );
  if ((await Promise.race([closed, expired])) === 'expired') {
    log.warn({ limit_ms: limitMs }, 'Shutdown did not finish in time; exiting anyway');
  }
  cancel?.();
}
