/**
 * Picks the Authority from the config's mode: the embedded CA without server_address, the
 * SPIRE server (through a ServerSession) with it. The agent's lifecycle module calls this and
 * nothing else constructs an authority, so the choice lives in one place. Each mode's modules
 * are loaded only when that mode runs: the embedded CA (an ASN.1 library, JOSE) is not on the
 * server-mode start path, nor the SPIRE server client on the embedded one.
 */
import type { Clock } from '../clock.js';
import type { AgentConfig, ServerModeConfig } from '../config/types.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import type { ServerSession } from './server/session.js';
import type { Authority } from './types.js';

export interface AuthorityFactoryDeps {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly clock: Clock;
  /** Builds the session with the SPIRE server; tests inject a fake one. Default: the real session. */
  readonly createServerSession?: (config: ServerModeConfig, log: Logger) => ServerSession;
  /** How many X509-SVIDs the cache holds; the sync loop polls at the default pace while it is 0. */
  readonly cachedX509Count?: () => number;
}

async function defaultSession(config: ServerModeConfig, log: Logger, clock: Clock): Promise<ServerSession> {
  const { createServerSession } = await import('./server/server-session.js');
  const a = config.agent;
  return createServerSession({
    options: { ...config.server, trustDomain: a.trustDomain, dataDir: a.dataDir, availabilityTargetMs: a.availabilityTargetMs },
    plugins: config.plugins,
    configFile: config.source,
    log,
    clock,
  });
}

export async function createAuthority(d: AuthorityFactoryDeps): Promise<Authority> {
  const { config, clock, log } = d;
  if (config.mode === 'embedded') {
    const { EmbeddedAuthority } = await import('./embedded/index.js');
    return new EmbeddedAuthority({
      trustDomain: config.agent.trustDomain,
      dataDir: config.agent.dataDir,
      config: config.embeddedAuthority,
      clock,
      log: log.child({ [F.subsystem]: 'embedded_authority' }),
    });
  }
  const sessionLog = log.child({ [F.subsystem]: 'server_session' });
  const [{ ServerAuthority }, session] = await Promise.all([
    import('./server/server-authority.js'),
    d.createServerSession ? d.createServerSession(config, sessionLog) : defaultSession(config, sessionLog, clock),
  ]);
  return new ServerAuthority({
    trustDomain: config.agent.trustDomain,
    syncIntervalMs: config.server.syncIntervalMs,
    useSyncAuthorizedEntries: config.server.useSyncAuthorizedEntries,
    retryBootstrap: config.server.retryBootstrap,
    session,
    clock,
    log: log.child({ [F.subsystem]: 'manager' }),
    cachedX509Count: d.cachedX509Count,
  });
}
