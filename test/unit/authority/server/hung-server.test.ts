/**
 * A SPIRE server that accepts calls and never answers them (stopped, paused, behind a stuck load
 * balancer), played by the FAKE in-process server's hang(): every call to it gives up within its
 * deadline, well before a workload's, the server is reported unreachable, and once it answers
 * again the agent says so (and its own SVID rotation is retried at once). The same scenario runs
 * against a real spire-server stopped with SIGSTOP in test/interop/server/hung-server.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { AgentRotation } from '../../../../src/authority/server/agent-rotation.js';
import type { AgentSVIDState } from '../../../../src/authority/server/agent-svid.js';
import { renewAgent } from '../../../../src/authority/server/attest-agent.js';
import { SERVER_CALL_TIMEOUT_MS } from '../../../../src/authority/server/rpc.js';
import { ServerAuthority } from '../../../../src/authority/server/server-authority.js';
import { systemClock } from '../../../../src/clock.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { FakeSession, FakeSpireServer } from '../../../helpers/fake-spire-server.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { callTimeoutMs?: number } = {}) {
  const server = await FakeSpireServer.start();
  server.addEntries(2);
  const session = new FakeSession(server);
  const authority = new ServerAuthority({
    trustDomain: server.trustDomain,
    syncIntervalMs: 60_000,
    useSyncAuthorizedEntries: true,
    session,
    clock: systemClock,
    log: nullLogger,
    random: () => 0.5,
    callTimeoutMs: opts.callTimeoutMs,
  });
  cleanups.push(async () => {
    await authority.close();
    await server.stop();
  });
  await authority.start(new AbortController().signal);
  return { server, session, authority };
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t0 = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - t0, value };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
}

describe('a SPIRE server that accepts calls and never answers', () => {
  it('has every call give up within 4 s, under the 5 s deadline workloads commonly give a fetch', () => {
    expect(SERVER_CALL_TIMEOUT_MS).toBeLessThan(5_000);
  });

  it('ends an entry sync within the call deadline (not the stream\'s 30 s) and reports the server unreachable', async () => {
    const { server, authority } = await setup();
    server.hang('SyncAuthorizedEntries');
    const r = await timed(authority.sync());
    expect(r.error, 'the sync fails').toBeDefined();
    expect(r.error).toMatchObject({ code: 'server_timeout' });
    expect(r.ms).toBeGreaterThanOrEqual(SERVER_CALL_TIMEOUT_MS - 50);
    expect(r.ms).toBeLessThan(SERVER_CALL_TIMEOUT_MS + 1_000);
    expect(server.count('SyncAuthorizedEntries.held')).toBe(1);
    expect(authority.status().serverReachable).toBe(false);
    // The snapshot from before keeps serving.
    expect(authority.snapshot().entries).toHaveLength(2);
  }, 15_000);

  it('ends a bundle fetch within the call deadline, and the sync with it', async () => {
    const { server, authority } = await setup({ callTimeoutMs: 300 });
    server.hang('GetBundle');
    const r = await timed(authority.sync());
    expect(r.error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(r.ms).toBeLessThan(1_500);
    expect(server.count('GetBundle.held')).toBe(1);
    expect(authority.status().serverReachable).toBe(false);
  }, 15_000);

  it('ends a JWT-SVID signing within the call deadline', async () => {
    const { server, authority } = await setup({ callTimeoutMs: 300 });
    server.hang('NewJWTSVID');
    const entry = authority.snapshot().entries[0]!;
    const r = await timed(authority.signJWTSVID(entry, ['aud']));
    expect(r.error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(r.ms).toBeLessThan(1_500);
  }, 15_000);

  it('ends the agent SVID renewal (RenewAgent) within 4 s', async () => {
    const { server, session } = await setup();
    server.hang('RenewAgent');
    const r = await timed(renewAgent(session.clients().agent, new Uint8Array([1]), new AbortController().signal));
    expect(r.error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(r.ms).toBeLessThan(SERVER_CALL_TIMEOUT_MS + 1_000);
    expect(server.count('RenewAgent.held')).toBe(1);
    server.resume();
    await expect(renewAgent(session.clients().agent, new Uint8Array([1]), new AbortController().signal)).resolves.toHaveLength(1);
  }, 15_000);

  it('once the server answers again, says so to the session (which retries a due agent SVID rotation) and syncs', async () => {
    const { server, session, authority } = await setup({ callTimeoutMs: 300 });
    server.hang();
    await expect(authority.sync()).rejects.toBeDefined();
    expect(session.answeredAgain).toBe(0);
    server.resume();
    const entry = authority.snapshot().entries[0]!;
    await authority.signJWTSVID(entry, ['aud']);
    expect(session.answeredAgain).toBe(1);
    expect(authority.status().serverReachable).toBe(true);
    await authority.sync();
    expect(session.answeredAgain).toBe(1);
  }, 15_000);

  it('the agent SVID rotation a returning server triggers retries a due renewal now, and nothing once the rotator stopped', async () => {
    const clock = new FakeClock();
    let renewals = 0;
    const due = { notBefore: clock.now() - 60_000, notAfter: clock.now() + 1_000, reattestable: false } as AgentSVIDState;
    const rotation = new AgentRotation({
      clock,
      log: nullLogger,
      availabilityTargetMs: 0,
      current: () => due,
      renew: async () => {
        renewals++;
        throw Object.assign(new Error('deadline'), { code: grpc.status.DEADLINE_EXCEEDED });
      },
      reattest: async () => {},
      deleteSVID: async () => {},
      fatal: () => {},
    });
    await rotation.tick();
    expect(renewals).toBe(1);
    // What serverAnsweredAgain does, without waiting for the backoff.
    await rotation.tick();
    expect(renewals).toBe(2);
    rotation.stop();
    await rotation.tick();
    expect(renewals).toBe(2);
  });
});
