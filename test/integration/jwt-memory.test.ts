/**
 * One local caller must not be able to make the agent hold hundreds of megabytes by
 * asking for JWT-SVIDs with huge audiences. Through the real daemon: 60 FetchJWTSVID
 * calls with distinct 3 MB audiences (before the fix: all minted and cached, +570 MB of
 * RSS) are refused with InvalidArgument naming the limit, and the daemon's RSS stays
 * within a generous bound. Audiences at the limit are still served.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkloadAPIClient } from '../../src/sdk/index.js';
import { AgentProcess, uidEntry } from '../helpers/agent-process.js';

/** The audience limits (src/endpoints/audience.ts), pinned: the daemon must refuse past exactly these. */
const MAX_AUDIENCE_VALUES = 64;
const MAX_AUDIENCE_BYTES = 8192;

let agent: AgentProcess;
let client: WorkloadAPIClient;

const rssBytes = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

beforeAll(async () => {
  agent = await AgentProcess.start({ entries: [uidEntry('/me', process.getuid!())] });
  client = new WorkloadAPIClient({ address: `unix://${agent.socketPath}` });
});
afterAll(async () => {
  client?.close();
  await agent?.stop();
});

describe('JWT-SVID audience and cache bounds', () => {
  it('refuses 60 requests with 3 MB audiences with InvalidArgument, and the agent RSS stays bounded', async () => {
    await client.fetchJWTSVIDs({ audience: ['warm-up'] });
    const before = rssBytes(agent.proc.pid!);
    const codes: number[] = [];
    const details: string[] = [];
    for (let i = 0; i < 60; i++) {
      const aud = `${i}-${'a'.repeat(3 * 1024 * 1024)}`;
      const r = await client.fetchJWTSVIDs({ audience: [aud] }, { timeoutMs: 20_000 }).then(
        () => ({ code: grpc.status.OK, details: '' }),
        (e: { status: number; details: string }) => ({ code: e.status, details: e.details }),
      );
      codes.push(r.code);
      details.push(r.details);
    }
    const grown = rssBytes(agent.proc.pid!) - before;
    expect(new Set(codes)).toEqual(new Set([grpc.status.INVALID_ARGUMENT]));
    expect(details[0]).toContain(`at most ${MAX_AUDIENCE_BYTES} bytes`);
    // Request buffers come and go; 570 MB stayed before the limit existed.
    expect(grown).toBeLessThan(200 * 1024 * 1024);
  }, 120_000);

  it('refuses more than the allowed number of audience values, naming the limit', async () => {
    const err = await client.fetchJWTSVIDs({ audience: Array.from({ length: MAX_AUDIENCE_VALUES + 1 }, (_, i) => `a${i}`) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: grpc.status.INVALID_ARGUMENT });
    expect((err as Error).message).toContain(`at most ${MAX_AUDIENCE_VALUES} are allowed`);
  });

  it('serves an audience right at the limits, and refuses a validation audience over the byte limit', async () => {
    const per = Math.floor(MAX_AUDIENCE_BYTES / MAX_AUDIENCE_VALUES);
    const audience = Array.from({ length: MAX_AUDIENCE_VALUES }, (_, i) => `${String(i).padStart(3, '0')}${'x'.repeat(per - 3)}`);
    const [svid] = await client.fetchJWTSVIDs({ audience });
    expect(svid!.audience).toHaveLength(MAX_AUDIENCE_VALUES);
    const err = await client.validateJWTSVID(svid!.token, 'v'.repeat(MAX_AUDIENCE_BYTES + 1)).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining(`at most ${MAX_AUDIENCE_BYTES} bytes`) });
  });
});
