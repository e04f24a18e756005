/**
 * X.509 authority rotation on a real spire-server v1.13.3 (localauthority x509 prepare, activate,
 * taint): when told the old authority is tainted, the session rotates the agent SVID at its next
 * check, and the new one is signed by the new authority.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rm } from 'node:fs/promises';
import { chainsToAny } from '../../../src/authority/server/agent-svid.js';
import { pemDecode } from '../../../src/svid/der.js';
import { startSpireServer, waitFor, type SpireServer } from '../../helpers/spire/index.js';
import { agentOnlyCall, newDataDir, planSessionSuite, serialOf, sessionFor } from './session-fixture.js';

const plan = planSessionSuite();

describe.skipIf(plan.skip)('session: tainted X.509 authority forces agent SVID rotation', () => {
  let server: SpireServer;
  let dataDir: string;

  beforeAll(async () => {
    if (!plan.bins) throw new Error(plan.reason);
    server = await startSpireServer({ bins: plan.bins });
    dataDir = await newDataDir();
  });
  afterAll(async () => {
    await server?.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('rotates through RenewAgent onto the new authority once the old one is tainted', async () => {
    const { session, log } = sessionFor(server, { dataDir, joinToken: await server.generateToken() });
    await session.start(new AbortController().signal);
    try {
      const oldRoots = pemDecode(await readFile(server.bundlePath, 'utf8'), 'CERTIFICATE');
      const old = (await server.authorities('x509')).active;
      const prepared = await server.prepareAuthority('x509');
      await server.activateAuthority('x509', prepared.authority_id);
      await server.taintAuthority('x509', old!.authority_id);
      const allRoots = pemDecode(await server.refreshBundle(), 'CERTIFICATE');
      await session.updateBundle(allRoots);
      const before = serialOf(session);
      // Not tainted by an unrelated authority.
      session.notifyTaintedAuthorities?.(allRoots.filter((r) => !oldRoots.some((o) => Buffer.from(o).equals(Buffer.from(r)))));
      expect(log.has('forcing rotation')).toBe(false);
      session.notifyTaintedAuthorities?.(oldRoots);
      expect(log.has('Agent SVID is tainted by a root authority, forcing rotation')).toBe(true);
      await waitFor('agent SVID rotation', () => (serialOf(session) !== before ? true : undefined), { timeoutMs: 20_000 });
      expect(chainsToAny(session.agentSVID().chain, oldRoots)).toBe(false);
      await expect(agentOnlyCall(session)).resolves.toBeInstanceOf(Uint8Array);
    } finally {
      await session.close();
    }
  }, 90_000);
});
