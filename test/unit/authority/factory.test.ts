import { describe, expect, it } from 'vitest';
import { EmbeddedAuthority } from '../../../src/authority/embedded/index.js';
import { createAuthority } from '../../../src/authority/factory.js';
import { ServerAuthority } from '../../../src/authority/server/server-authority.js';
import type { ServerSession } from '../../../src/authority/server/session.js';
import { parseConfigText } from '../../../src/config/load.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const load = (agentBody: string) => parseConfigText(`agent {\n  trust_domain = "example.org"\n${agentBody}\n}\n`, '/etc/agent.conf', { expandEnv: false });

describe('createAuthority', () => {
  it('builds the embedded authority without server_address', async () => {
    const config = await load('');
    const a = await createAuthority({ config, log: nullLogger, clock: new FakeClock() });
    expect(a).toBeInstanceOf(EmbeddedAuthority);
    expect(a.status()).toMatchObject({ mode: 'embedded', agentSVID: undefined, serverReachable: undefined });
  });

  it('builds the server authority over the session factory with server_address, passing it the server settings', async () => {
    const config = await load('  server_address = "127.0.0.1"\n  insecure_bootstrap = true\n  experimental { sync_interval = "7s" }');
    let seen: unknown;
    const session = { start: async () => {}, close: async () => {} } as unknown as ServerSession;
    const a = await createAuthority({
      config,
      log: nullLogger,
      clock: new FakeClock(),
      createServerSession: (c) => {
        seen = c.mode === 'server' ? c.server.syncIntervalMs : undefined;
        return session;
      },
    });
    expect(a).toBeInstanceOf(ServerAuthority);
    expect(seen).toBe(7_000);
    expect(a.status()).toMatchObject({ mode: 'server', ready: false, lastSyncSuccess: 0 });
  });
});
