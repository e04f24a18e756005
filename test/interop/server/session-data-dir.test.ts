/**
 * data_dir compatibility with the real spire-agent v1.13.3 in both directions, and crash safety:
 * a session killed with SIGKILL at arbitrary moments of its SVID rotation resumes from data_dir
 * without attesting again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { agentConfFor, dataDir, startSpireAgent, type SpireServer } from '../../helpers/spire/index.js';
import { startSpireServer, sleep, waitFor } from '../../helpers/spire/index.js';
import { AgentStorage } from '../../../src/authority/server/agent-storage.js';
import { findKeyForSVID } from '../../../src/authority/server/agent-svid.js';
import { DiskKeyManager } from '../../../src/keymanager/disk.js';
import { agentOnlyCall, newDataDir, pluginsFor, planSessionSuite, sessionFor } from './session-fixture.js';

const plan = planSessionSuite();
const CHILD = fileURLToPath(new URL('./session-child.mjs', import.meta.url));

describe.skipIf(plan.skip)('session: data_dir shared with spire-agent v1.13.3; kill -9', () => {
  let server: SpireServer;
  const cleanup: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    if (!plan.bins) throw new Error(plan.reason);
    // Short agent SVIDs so the kill -9 test crosses several RenewAgent rotations.
    server = await startSpireServer({ bins: plan.bins, agentTtl: '20s' });
  });
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
    await server?.destroy();
  });

  it('resumes from a data_dir spire-agent attested into, without attesting again', async () => {
    const token = await server.generateToken();
    const conf = await agentConfFor(server, { joinToken: token }, 'from-spire');
    const agent = await startSpireAgent(plan.bins!, conf);
    cleanup.push(() => agent.destroy());
    await agent.stop();
    const before = (await server.listAgents()).find((a) => a.id === server.agentIdForToken(token));
    const { session, log } = sessionFor(server, { dataDir: dataDir(conf) });
    await session.start(new AbortController().signal);
    try {
      expect(log.has('SVID loaded')).toBe(true);
      expect(log.has('Node attestation was successful')).toBe(false);
      expect(session.agentSVID().spiffeId).toBe(server.agentIdForToken(token));
      // spire-agent may have renewed once already; either way no attestation happened and the server accepts the SVID.
      await expect(agentOnlyCall(session)).resolves.toBeInstanceOf(Uint8Array);
      expect(before?.attestationType).toBe('join_token');
    } finally {
      await session.close();
    }
  });

  it('hands its data_dir to spire-agent, which loads the SVID instead of attesting', async () => {
    const token = await server.generateToken();
    const conf = await agentConfFor(server, {}, 'to-spire');
    const { session } = sessionFor(server, { dataDir: dataDir(conf), joinToken: token });
    await session.start(new AbortController().signal);
    await session.close();
    // No join token in spire-agent's config: it can only run by loading our SVID.
    const agent = await startSpireAgent(plan.bins!, conf);
    cleanup.push(() => agent.destroy());
    const logText = agent.daemon.lines.join('\n');
    expect(logText).toContain('SVID loaded');
    expect(logText).not.toContain('Node attestation was successful');
    await agent.stop();
  });

  it('survives SIGKILL at arbitrary moments of rotation: every restart resumes, files stay consistent', async () => {
    const dir = await newDataDir();
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const token = await server.generateToken();
    const setup = (joinToken?: string) =>
      JSON.stringify({
        options: {
          trustDomain: server.trustDomain,
          dataDir: dir,
          serverAddress: '127.0.0.1',
          serverPort: server.port,
          trustBundlePath: server.bundlePath,
          trustBundleFormat: 'pem',
          insecureBootstrap: false,
          rebootstrapMode: 'never',
          rebootstrapDelayMs: 600_000,
          availabilityTargetMs: 0,
        },
        plugins: pluginsFor({ dataDir: dir }),
        configFile: 'session-child',
        joinToken,
      });
    const startChild = (joinToken?: string): { child: ChildProcess; out: string[] } => {
      const child = spawn(process.execPath, [CHILD, setup(joinToken)], { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: string[] = [];
      child.stdout!.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
      child.stderr!.on('data', () => {});
      cleanup.push(async () => void child.kill('SIGKILL'));
      return { child, out };
    };
    const ready = (out: string[]) => waitFor('session child READY', () => (out.some((l) => l.startsWith('READY') || l.startsWith('FAILED')) ? true : undefined), { timeoutMs: 30_000 });

    let c = startChild(token);
    await ready(c.out);
    expect(c.out.find((l) => l.startsWith('FAILED'))).toBeUndefined();
    let rotations = 0;
    // 40+ s with kills every 0.3-4 s: several half-life rotations (20 s SVIDs) get interrupted.
    for (let i = 0; i < 14; i++) {
      await sleep(300 + Math.floor(Math.random() * 3700));
      rotations += c.out.filter((l) => l === 'ROTATED').length;
      c.child.kill('SIGKILL');
      await new Promise((r) => c.child.once('exit', r));
      c = startChild();
      await ready(c.out);
      expect(c.out.find((l) => l.startsWith('FAILED'))).toBeUndefined();
      expect(c.out).toContain('LOG SVID loaded');
      expect(c.out.some((l) => l.includes('Node attestation was successful'))).toBe(false);
      const storage = await AgentStorage.open(dir);
      const keys = await new DiskKeyManager({ directory: dir }).getKeys();
      expect(findKeyForSVID(keys, storage.svid().chain[0])).toBeDefined();
    }
    rotations += c.out.filter((l) => l === 'ROTATED').length;
    c.child.kill('SIGKILL');
    const finalSession = sessionFor(server, { dataDir: dir });
    await finalSession.session.start(new AbortController().signal);
    try {
      await expect(agentOnlyCall(finalSession.session)).resolves.toBeInstanceOf(Uint8Array);
      // 20 s SVIDs over ~45 s: without persisted rotations the last restart would hold an expired SVID.
      expect(rotations).toBeGreaterThanOrEqual(2);
      expect(finalSession.session.agentSVID().notAfter).toBeGreaterThan(Date.now());
    } finally {
      await finalSession.session.close();
    }
  });
});
