/**
 * Statuses that tell clients what to do, through the real daemon and real processes:
 * a caller whose connecting process has exited gets Unauthenticated (not Unavailable,
 * which clients retry forever), and a binary over workload_size_limit gets
 * FailedPrecondition naming the limit (retrying cannot make the binary smaller).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { AgentProcess, cli, REPO, uidEntry } from '../helpers/agent-process.js';

const ORPHAN = join(REPO, 'test/helpers/orphan-caller.mjs');
const LIMIT = 4096;

let agent: AgentProcess;

beforeAll(async () => {
  const uid = process.getuid!();
  agent = await AgentProcess.start({
    entries: [uidEntry('/me', uid)],
    // Every binary is larger than 4 KiB, node included.
    unixPluginData: `discover_workload_path = true\n      workload_size_limit = ${LIMIT}`,
  });
});
afterAll(async () => agent?.stop());

/** Runs the orphan caller and returns the status the agent answered with. */
function orphanCall(socketPath: string): Promise<{ status: number; message: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [ORPHAN, 'parent', socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const t = setTimeout(() => reject(new Error(`orphan caller timed out: ${out}${err}`)), 20_000);
    // Both parent and child write to this pipe; it ends when the child has answered.
    p.stdout.on('end', () => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out.trim()) as { status: number; message: string });
      } catch {
        reject(new Error(`orphan caller printed no status: ${out}${err}`));
      }
    });
  });
}

describe('status codes', () => {
  it('answers Unauthenticated to a connection whose connecting process has exited', async () => {
    const r = await orphanCall(agent.socketPath);
    expect(r.status, r.message).toBe(grpc.status.UNAUTHENTICATED);
    expect(r.message).toMatch(/no longer the process that connected/);
  });

  it('answers FailedPrecondition, naming the limit, to a binary over workload_size_limit', async () => {
    const r = await cli(['api', 'fetch', 'jwt', '-audience', 'svc', '-socketPath', agent.socketPath]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/code = FailedPrecondition/);
    expect(r.stderr).toContain(`over workload_size_limit ${LIMIT}`);
    expect(r.stdout).not.toMatch(/eyJ/);
  });

  it('audits both denials with their reasons', () => {
    const denied = agent.logs.filter((l) => /Workload API decision/.test(l) && /denied/.test(l));
    expect(denied.some((l) => /no longer the process that connected/.test(l))).toBe(true);
    expect(denied.some((l) => /workload_size_limit/.test(l))).toBe(true);
  });
});
