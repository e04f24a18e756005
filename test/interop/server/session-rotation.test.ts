/**
 * Agent SVID lifecycle against a real spire-server v1.13.3 with 20 s agent SVIDs: RenewAgent at
 * half-life with agent-only calls succeeding throughout, re-attestation for x509pop, eviction
 * (re-attest) and ban (SVID deleted, onFatal) as spire-agent handles them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeX509popCA, sleep, startSpireServer, waitFor, type SpireServer, type X509popCA } from '../../helpers/spire/index.js';
import { JoinTokenAttestor } from '../../../src/attestation/node/join-token/index.js';
import { SealedTestKeyManager, agentOnlyCall, newDataDir, planSessionSuite, serialOf, sessionFor } from './session-fixture.js';

const plan = planSessionSuite();

describe.skipIf(plan.skip)('session: agent SVID rotation, eviction and ban (spire-server v1.13.3, agent_ttl 20s)', () => {
  let server: SpireServer;
  let pop: X509popCA;
  const dirs: string[] = [];
  const dir = async () => {
    const d = await newDataDir();
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    if (!plan.bins) throw new Error(plan.reason);
    pop = await makeX509popCA();
    server = await startSpireServer({ bins: plan.bins, agentTtl: '20s', nodeAttestors: { joinToken: true, x509pop: { caBundlePath: pop.caBundlePath } } });
  });
  afterAll(async () => {
    await server?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('join_token: renews through RenewAgent at half-life with no failed call in between, and stores each SVID', async () => {
    const token = await server.generateToken();
    const dataDir = await dir();
    const { session, log } = sessionFor(server, { dataDir, joinToken: token });
    await session.start(new AbortController().signal);
    try {
      const serials = new Set([serialOf(session)]);
      const failures: string[] = [];
      const until = Date.now() + 32_000;
      while (Date.now() < until) {
        await agentOnlyCall(session).catch((e: Error) => failures.push(e.message));
        serials.add(serialOf(session));
        await sleep(250);
      }
      expect(failures).toEqual([]);
      expect(serials.size).toBeGreaterThanOrEqual(3);
      expect(log.has('Successfully rotated agent SVID')).toBe(true);
      expect(session.agentSVID().spiffeId).toBe(server.agentIdForToken(token));
      // The server moved to the renewed SVID, and data_dir holds the current one.
      await waitFor('server to list the current serial', async () => ((await server.listAgents()).find((a) => a.id === server.agentIdForToken(token))?.serial === serialOf(session) ? true : undefined), {
        timeoutMs: 15_000,
      });
      const stored = JSON.parse(await readFile(join(dataDir, 'agent-data.json'), 'utf8'));
      expect(Buffer.from(stored.svid[0], 'base64').toString()).toContain('BEGIN CERTIFICATE');
      expect(stored.reattestable).toBe(false);
    } finally {
      await session.close();
    }
  }, 90_000);

  it('a key manager that keeps its keys sealed: CSRs through sign(), the private key only through unsealForTLS, once per channel', async () => {
    const token = await server.generateToken();
    const km = new SealedTestKeyManager();
    const { session, log } = sessionFor(server, { dataDir: await dir() }, undefined, { keyManager: km, nodeAttestor: new JoinTokenAttestor(token) });
    await session.start(new AbortController().signal);
    try {
      // Attestation: one CSR signed, one mTLS channel built.
      expect(km.calls).toEqual({ sign: 1, unsealForTLS: 1 });
      await expect(agentOnlyCall(session)).resolves.toBeInstanceOf(Uint8Array);
      const first = serialOf(session);
      await waitFor('a renewal', () => (serialOf(session) !== first && log.has('Successfully rotated agent SVID') ? true : undefined), { timeoutMs: 25_000 });
      await waitFor('the channel on the renewed SVID', () => (km.calls.unsealForTLS === 2 ? true : undefined), { timeoutMs: 5_000 });
      expect(km.calls).toEqual({ sign: 2, unsealForTLS: 2 });
      await expect(agentOnlyCall(session)).resolves.toBeInstanceOf(Uint8Array);
    } finally {
      await session.close();
    }
  }, 60_000);

  it('x509pop: rotation re-attests (new AttestAgent) instead of renewing', async () => {
    const node = await pop.issueNode('rot');
    const { session, log } = sessionFor(server, { dataDir: await dir(), x509pop: node });
    await session.start(new AbortController().signal);
    try {
      const first = serialOf(session);
      // The new SVID is in place before it is stored and the success is logged, so wait for both.
      const attested = (): number => log.lines.filter((l) => l.includes('Node attestation was successful')).length;
      await waitFor('a re-attestation', () => (serialOf(session) !== first && attested() >= 2 ? true : undefined), { timeoutMs: 25_000 });
      expect(attested()).toBeGreaterThanOrEqual(2);
      expect(log.has('Successfully rotated agent SVID')).toBe(false);
      await expect(agentOnlyCall(session)).resolves.toBeInstanceOf(Uint8Array);
    } finally {
      await session.close();
    }
  }, 60_000);

  it('x509pop: a stored SVID that expired while the agent was down is replaced by attesting again', async () => {
    const node = await pop.issueNode('expired');
    const d = await dir();
    const first = sessionFor(server, { dataDir: d, x509pop: node });
    await first.session.start(new AbortController().signal);
    const notAfter = first.session.agentSVID().notAfter;
    await first.session.close();
    await sleep(Math.max(0, notAfter - Date.now()) + 1_500);
    const again = sessionFor(server, { dataDir: d, x509pop: node });
    await again.session.start(new AbortController().signal);
    try {
      expect(again.log.has('SVID key recovered, but SVID is expired')).toBe(true);
      expect(again.log.has('Node attestation was successful')).toBe(true);
      expect(again.session.agentSVID().notAfter).toBeGreaterThan(Date.now());
      await expect(agentOnlyCall(again.session)).resolves.toBeInstanceOf(Uint8Array);
    } finally {
      await again.session.close();
    }
  }, 60_000);

  it('evicted x509pop agent re-attests when the server refuses it; evicted join_token agent deletes its SVID and reports fatal', async () => {
    const node = await pop.issueNode('evict');
    const a = sessionFor(server, { dataDir: await dir(), x509pop: node });
    await a.session.start(new AbortController().signal);
    const bDir = await dir();
    const token = await server.generateToken();
    const b = sessionFor(server, { dataDir: bDir, joinToken: token });
    await b.session.start(new AbortController().signal);
    const fatal: Error[] = [];
    b.session.onFatal((e) => fatal.push(e));
    try {
      await server.evictAgent(node.agentId(server.trustDomain));
      await server.evictAgent(server.agentIdForToken(token));
      for (const s of [a.session, b.session]) {
        const err = await agentOnlyCall(s).catch((e: unknown) => e);
        await s.handleServerError?.(err);
      }
      expect(a.log.has('Agent needs to re-attest; will attempt to re-attest')).toBe(true);
      await expect(agentOnlyCall(a.session)).resolves.toBeInstanceOf(Uint8Array);
      expect((await server.listAgents()).some((x) => x.id === node.agentId(server.trustDomain))).toBe(true);
      expect(fatal.map((e) => (e as { code?: string }).code)).toEqual(['agent_must_reattest']);
      expect(JSON.parse(await readFile(join(bDir, 'agent-data.json'), 'utf8')).svid).toBeNull();
    } finally {
      await a.session.close();
      await b.session.close();
    }
  }, 60_000);

  it('banned agent deletes its SVID and reports agent_banned, even when re-attestable', async () => {
    const node = await pop.issueNode('ban');
    const d = await dir();
    const { session, log } = sessionFor(server, { dataDir: d, x509pop: node });
    await session.start(new AbortController().signal);
    const fatal: Error[] = [];
    session.onFatal((e) => fatal.push(e));
    try {
      await server.banAgent(node.agentId(server.trustDomain));
      const err = await agentOnlyCall(session).catch((e: unknown) => e);
      await session.handleServerError?.(err);
      expect(fatal.map((e) => (e as { code?: string }).code)).toEqual(['agent_banned']);
      expect(log.has('Agent is banned: removing SVID and shutting down')).toBe(true);
      expect(JSON.parse(await readFile(join(d, 'agent-data.json'), 'utf8')).svid).toBeNull();
      // And the server refuses it on the next start too.
      const again = sessionFor(server, { dataDir: d, x509pop: node });
      await expect(again.session.start(new AbortController().signal)).rejects.toThrow(/banned|PermissionDenied|permission/i);
    } finally {
      await session.close();
    }
  }, 60_000);
});
