/**
 * Picks the Authority from the config's mode: the embedded CA without server_address, the
 * SPIRE server (through a ServerSession) with it. The agent's lifecycle module calls this and
 * nothing else constructs an authority, so the choice lives in one place. Each mode's modules
 * are loaded only when that mode runs: the embedded CA (an ASN.1 library, JOSE) is not on the
 * server-mode start path, nor the SPIRE server client on the embedded one.
 */
import type { Metrics } from '../telemetry/metrics/index.js';
import type { NodeAttestor } from '../attestation/node/types.js';
import type { Clock } from '../clock.js';
import type { AgentConfig, ServerModeConfig } from '../config/types.js';
import { SpiffeAgentError } from '../errors.js';
import type { KeyManager } from '../keymanager/types.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import type { ServerSession } from './server/session.js';
import type { Authority } from './types.js';

/** Server mode: the plugins the agent built from plugins {} (their catalogs) and owns. */
export interface ServerPlugins {
  readonly nodeAttestor: NodeAttestor;
  readonly keyManager: KeyManager;
  /** trust_bundle_spiffe_workload_api's fetch: a Workload API client, which this layer may not import. */
  readonly workloadApiBundle?: ((address: string, trustDomain: string) => Promise<Uint8Array[]>) | undefined;
}

export interface AuthorityFactoryDeps {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly clock: Clock;
  /** Server mode: what the real session attests and keeps its keys with. */
  readonly serverPlugins?: ServerPlugins;
  /** Builds the session with the SPIRE server; tests inject a fake one. Default: the real session over serverPlugins. */
  readonly createServerSession?: (config: ServerModeConfig, log: Logger) => ServerSession;
  /** How many X509-SVIDs the cache holds; the sync loop polls at the default pace while it is 0. */
  readonly cachedX509Count?: () => number;
  /** spire-agent's node attestation, rotation and sync metrics (server mode). */
  readonly metrics?: Metrics;
}

async function defaultSession(config: ServerModeConfig, log: Logger, clock: Clock, plugins: ServerPlugins | undefined, metrics: Metrics | undefined): Promise<ServerSession> {
  if (!plugins) {
    throw new SpiffeAgentError('node_attestor_count', `authority: ${config.source} joins a SPIRE server, but no NodeAttestor and KeyManager were built from its plugins {}`);
  }
  const { createServerSession } = await import('./server/server-session.js');
  const a = config.agent;
  return createServerSession({
    options: { ...config.server, trustDomain: a.trustDomain, dataDir: a.dataDir, availabilityTargetMs: a.availabilityTargetMs },
    nodeAttestor: plugins.nodeAttestor,
    keyManager: plugins.keyManager,
    workloadApiBundle: plugins.workloadApiBundle,
    log,
    clock,
    metrics,
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
    d.createServerSession ? d.createServerSession(config, sessionLog) : defaultSession(config, sessionLog, clock, d.serverPlugins, d.metrics),
  ]);
  return new ServerAuthority({
    trustDomain: config.agent.trustDomain,
    syncIntervalMs: config.server.syncIntervalMs,
    useSyncAuthorizedEntries: config.server.useSyncAuthorizedEntries,
    retryBootstrap: config.server.retryBootstrap,
    rebootstrapping: config.server.rebootstrapMode !== 'never',
    session,
    clock,
    log: log.child({ [F.subsystem]: 'manager' }),
    cachedX509Count: d.cachedX509Count,
    metrics: d.metrics,
  });
}
