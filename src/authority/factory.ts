/**
 * Picks the Authority from the config's mode: the embedded CA without server_address, the
 * SPIRE server session with it. The agent's lifecycle module calls this and nothing else
 * constructs an authority, so the choice lives in one place.
 */
import type { Clock } from '../clock.js';
import type { AgentConfig, ServerModeConfig } from '../config/types.js';
import { SpiffeAgentError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { F } from '../telemetry/names.js';
import { EmbeddedAuthority } from './embedded/index.js';
import type { ServerSession } from './server/session.js';
import type { Authority } from './types.js';

export interface AuthorityFactoryDeps {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly clock: Clock;
  /** Builds the session with the SPIRE server (trust bootstrap, node attestation, agent SVID); server mode only. */
  readonly createServerSession?: (config: ServerModeConfig) => ServerSession;
}

export class AuthorityFactoryError extends SpiffeAgentError {}

export function createAuthority(d: AuthorityFactoryDeps): Authority {
  const { config, clock, log } = d;
  if (config.mode === 'embedded') {
    return new EmbeddedAuthority({
      trustDomain: config.agent.trustDomain,
      dataDir: config.agent.dataDir,
      config: config.embeddedAuthority,
      clock,
      log: log.child({ [F.subsystem]: 'embedded_authority' }),
    });
  }
  throw new AuthorityFactoryError(
    'server_not_supported',
    `agent: server_address is set in ${config.source}, but this build cannot join a SPIRE server yet; remove server_address to serve from the embedded authority`,
  );
}
