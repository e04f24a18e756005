/**
 * What the server authority tells the rest of the agent, against a real spire-server v1.13.3
 * (ServerAuthority in process over a real ServerSession; then both agents as daemons):
 * - a change is published only when something a workload can see changed (entries, bundles),
 *   and the own trust domain's X.509 authorities reach the session once per change;
 * - the first sync after start-up fails (the server went down after the agent attested, and the
 *   agent restarts from data_dir) with retry_bootstrap = false: start-up fails with a clear error.
 *   spire-agent does the same (pkg/agent/agent.go: without RetryBootstrap, mgr.Initialize's error
 *   ends the agent).
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerAuthority } from '../../../src/authority/server/server-authority.js';
import { systemClock } from '../../../src/clock.js';
import { JSON_LOGS, agentConfFor, startAgent, startSpireServer, waitFor, type SpireServer } from '../../helpers/spire/index.js';
import { KINDS } from './fixture.js';
import { MemoryLog, newDataDir, planSessionSuite, sessionFor } from './session-fixture.js';

const plan = planSessionSuite();
const TD = 'example.org';

describe.skipIf(plan.skip)('server authority changes against spire-server v1.13.3', () => {
  let server: SpireServer;
  const dirs: string[] = [];
  const dir = async () => {
    const d = await newDataDir();
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    if (!plan.bins) throw new Error(plan.reason);
    server = await startSpireServer({ bins: plan.bins, cacheReloadInterval: '1s' });
  });
  afterAll(async () => {
    await server?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  function authorityFor(session: ReturnType<typeof sessionFor>['session'], log = new MemoryLog()): ServerAuthority {
    return new ServerAuthority({ trustDomain: TD, syncIntervalMs: 600_000, useSyncAuthorizedEntries: true, session, clock: systemClock, log });
  }

  it('publishes a change only when workloads can see one, and hands the own bundle to the session once per change', async () => {
    const alias = `spiffe://${TD}/node/changes`;
    const sel = [{ type: 'unix', value: 'uid:1001' }];
    await server.createEntries([{ spiffe_id: `spiffe://${TD}/changes/one`, parent_id: alias, selectors: sel }]);
    const { session } = sessionFor(server, { dataDir: await dir(), joinToken: await server.generateToken(alias) });
    const handed: number[] = [];
    const realUpdate = session.updateBundle.bind(session);
    session.updateBundle = (x509) => (handed.push(x509.length), realUpdate(x509));
    const authority = authorityFor(session);
    try {
      await authority.start(new AbortController().signal);
      const has = (path: string) => authority.snapshot().entries.some((e) => e.spiffeId === `spiffe://${TD}${path}`);
      const syncUntil = (what: string, done: () => boolean) =>
        waitFor(what, async () => (await authority.sync(), done() ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
      await syncUntil('the first entry', () => has('/changes/one'));
      let changes = 0;
      authority.onChange(() => changes++);
      await authority.sync();
      await authority.sync();
      expect(changes, 'syncs that bring nothing new').toBe(0);
      expect(handed).toEqual([1]);

      const [two] = await server.createEntries([{ spiffe_id: `spiffe://${TD}/changes/two`, parent_id: alias, selectors: sel }]);
      await syncUntil('the new entry', () => has('/changes/two'));
      expect(changes).toBe(1);
      await server.deleteEntry(two!.id);
      await syncUntil('the deleted entry gone', () => !has('/changes/two'));
      expect(changes).toBe(2);

      // A prepared X.509 authority joins the bundle: one change, handed to the session once.
      await server.prepareAuthority('x509');
      await syncUntil('the prepared authority in the bundle', () => authority.snapshot().bundle.x509Authorities.length === 2);
      await authority.sync();
      expect(changes).toBe(3);
      expect(handed).toEqual([1, 2]);
    } finally {
      await authority.close();
    }
  }, 120_000);

  it('fails start-up with initial_sync_failed when the first sync fails and retry_bootstrap is off', async () => {
    const alias = `spiffe://${TD}/node/initial`;
    const dataDir = await dir();
    const first = authorityFor(sessionFor(server, { dataDir, joinToken: await server.generateToken(alias) }).session);
    await first.start(new AbortController().signal);
    await first.close();
    await server.stop();
    try {
      const log = new MemoryLog();
      const again = authorityFor(sessionFor(server, { dataDir }, log).session, log);
      const t0 = Date.now();
      await expect(again.start(new AbortController().signal)).rejects.toMatchObject({ code: 'initial_sync_failed', message: expect.stringContaining('retry_bootstrap') });
      // It resumed from data_dir (no attestation needed) and failed on the sync itself, at once.
      expect(log.has('SVID loaded'), log.lines.join('\n')).toBe(true);
      expect(Date.now() - t0).toBeLessThan(30_000);
      await again.close();
    } finally {
      await server.restart();
    }
  }, 120_000);

  it.each(KINDS)('%s restarted from data_dir while the server is down, retry_bootstrap = false: exits with the sync error', async (kind) => {
    const alias = `spiffe://${TD}/node/initial-${kind}`;
    const extra = `${JSON_LOGS}\n    retry_bootstrap = false`;
    const conf = await agentConfFor(server, { joinToken: await server.generateToken(alias), agentExtra: extra }, `${kind}-initial`);
    const agent = await startAgent(kind, plan.bins!, conf);
    try {
      await agent.stop();
      await server.stop();
      await agent.start({ waitReady: false });
      const t0 = Date.now();
      await agent.waitExit(120_000);
      const errors = agent.daemon.lines.filter((l) => /"level":"(error|fatal)"/.test(l));
      console.log(`${kind}: exited after ${Date.now() - t0} ms (${agent.daemon.exitInfo()}); last error: ${errors.at(-1)}`);
      expect(agent.daemon.proc.exitCode, agent.logTail()).not.toBe(0);
      // spire-agent: "Agent crashed", failed to fetch authorized entries; spiffe-agent: "Agent failed", could not fetch entries.
      expect(errors.at(-1) ?? '', agent.logTail()).toMatch(/fetch (authorized )?entries.*(Unavailable|UNAVAILABLE)/);
    } finally {
      await agent.destroy();
      await server.restart();
    }
  }, 240_000);
});
