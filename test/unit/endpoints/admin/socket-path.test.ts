/** spire-agent refuses an admin socket in or under the public socket's directory. */
import { describe, expect, it } from 'vitest';
import { checkAdminSocketPath } from '../../../../src/endpoints/admin/socket-path.js';

describe('checkAdminSocketPath', () => {
  const cases: { admin: string; ok: boolean }[] = [
    { admin: '/run/spire/sockets/admin.sock', ok: false },
    { admin: '/run/spire/sockets/private/admin.sock', ok: false },
    { admin: '/run/spire/sockets/../sockets/admin.sock', ok: false },
    { admin: '/run/spire/private/admin.sock', ok: true },
    { admin: '/run/spire/sockets-admin/admin.sock', ok: true },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'refuses'} ${c.admin} next to /run/spire/sockets/agent.sock`, () => {
      const run = (): void => checkAdminSocketPath('/run/spire/sockets/agent.sock', c.admin);
      if (c.ok) expect(run).not.toThrow();
      else expect(run).toThrow(/admin socket cannot be in the same directory or a subdirectory/);
    });
  }
});
