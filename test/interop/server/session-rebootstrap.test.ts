/**
 * The server's CA changes under the agent (spire-server restarted with KeyManager "memory" mints a
 * new one): the next call fails TLS verification. With rebootstrap_mode "never" the session stops
 * with a clear error; with "auto" (re-attestable x509pop, rebootstrap_delay 0) it marks data_dir
 * for rebootstrap as spire-agent does, and the next start fetches the bootstrap bundle again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeX509popCA, startSpireServer, type SpireServer, type X509popCA } from '../../helpers/spire/index.js';
import { agentOnlyCall, newDataDir, planSessionSuite, sessionFor } from './session-fixture.js';

const plan = planSessionSuite();

describe.skipIf(plan.skip)('session: server CA no longer verifies (rebootstrap_mode)', () => {
  let server: SpireServer;
  let pop: X509popCA;
  const dirs: string[] = [];

  beforeAll(async () => {
    if (!plan.bins) throw new Error(plan.reason);
    pop = await makeX509popCA();
    server = await startSpireServer({ bins: plan.bins, keyManager: 'memory', nodeAttestors: { joinToken: true, x509pop: { caBundlePath: pop.caBundlePath } } });
  });
  afterAll(async () => {
    await server?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('"never" stops with server_unknown_authority; "auto" marks data_dir for rebootstrap and the next start attests with the new bundle', async () => {
    const neverDir = await newDataDir();
    const autoDir = await newDataDir();
    dirs.push(neverDir, autoDir);
    const never = sessionFor(server, { dataDir: neverDir, joinToken: await server.generateToken() });
    const node = await pop.issueNode('rb');
    const auto = sessionFor(server, { dataDir: autoDir, x509pop: node, rebootstrapMode: 'auto', rebootstrapDelayMs: 0 });
    await never.session.start(new AbortController().signal);
    await auto.session.start(new AbortController().signal);
    const fatal: string[] = [];
    never.session.onFatal((e) => fatal.push(`never:${(e as { code?: string }).code}`));
    auto.session.onFatal((e) => fatal.push(`auto:${(e as { code?: string }).code}`));
    try {
      await server.restart();
      await server.refreshBundle();
      for (const s of [never.session, auto.session]) {
        const err = await agentOnlyCall(s).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Error);
        await s.handleServerError?.(err);
      }
      expect(fatal.sort()).toEqual(['auto:rebootstrap_required', 'never:server_unknown_authority']);
      const doc = JSON.parse(await readFile(join(autoDir, 'agent-data.json'), 'utf8'));
      expect(doc.bundle).toBeNull();
      expect(doc.svid).toBeNull();
      expect(doc.bootstrap_use).toBe(2);
    } finally {
      await never.session.close();
      await auto.session.close();
    }
    // Next start: bundle from trust_bundle_path (the server's new one), attests again.
    const again = sessionFor(server, { dataDir: autoDir, x509pop: node, rebootstrapMode: 'auto', rebootstrapDelayMs: 0 });
    await again.session.start(new AbortController().signal);
    try {
      expect(again.log.has('Node attestation was successful')).toBe(true);
      await expect(agentOnlyCall(again.session)).resolves.toBeInstanceOf(Uint8Array);
    } finally {
      await again.session.close();
    }
  }, 120_000);
});
