/**
 * Frame-level fuzzing of the real daemon by another local user (uid 65534): random sequences of
 * valid and invalid HTTP/2 frames from several connections at once (test/attack/h2-fuzz.mjs),
 * some after a real gRPC client's handshake and request, some through the :authority filter.
 * While it runs, root must keep getting its SVID (a hang fails); afterwards the agent is alive
 * and its fds and RSS are back at baseline. Any failure prints the seed; rerun it with
 *
 *   H2_FUZZ_SEED=<seed> H2_FUZZ_SECONDS=300 sudo npx vitest run test/integration/fuzz-h2.test.ts
 *
 * 30 s in CI unless H2_FUZZ_SECONDS says otherwise.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, cli, collect, sleep, uidEntry } from '../helpers/agent-process.js';

const SECONDS = Number(process.env.H2_FUZZ_SECONDS ?? 30);
const SEED = Number(process.env.H2_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const MiB = 1024;

let agent: AgentProcess;
const fdCount = (): number => readdirSync(`/proc/${agent.proc.pid}/fd`).length;
const rssKiB = (): number => Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${agent.proc.pid}/status`, 'utf8'))![1]);
const alive = (): boolean => agent.proc.exitCode === null && agent.proc.signalCode === null;

async function rootFetch(): Promise<{ ok: boolean; detail: string }> {
  const r = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath, '-timeout', '20s'], { uid: 0, gid: 0 }, 40_000);
  return { ok: r.stdout.includes('spiffe://example.org/root'), detail: r.stderr || r.stdout };
}

beforeAll(async () => {
  agent = await AgentProcess.start({ entries: [uidEntry('/root', 0), uidEntry('/fuzz', 65534)], nofile: 1024, bin: true });
  expect((await rootFetch()).ok).toBe(true);
});
afterAll(async () => agent?.stop());

describe(`HTTP/2 frame fuzzing from another local user (seed ${SEED})`, () => {
  it(`${SECONDS} s of random frames from 6 connections: no crash, no hang, no leak`, async () => {
    const seedNote = `fuzz seed ${SEED}: rerun with H2_FUZZ_SEED=${SEED}`;
    const baseline = { fds: fdCount(), rss: rssKiB() };
    const child = spawn(process.execPath, [join(REPO, 'test/attack/h2-fuzz.mjs'), agent.socketPath, '--seed', String(SEED), '--seconds', String(SECONDS), '--conns', '6'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      uid: 65534,
      gid: 65534,
    });
    const done = collect(child, (SECONDS + 60) * 1000);
    let running = true;
    void done.then(() => (running = false));
    const fetches: { ok: boolean; detail: string }[] = [];
    while (running) {
      fetches.push(await rootFetch());
      expect(alive(), `${seedNote}\n${agent.logs.slice(-30).join('\n')}`).toBe(true);
      await sleep(2000);
    }
    const r = await done;
    expect(r.code, `${seedNote}\n${r.stderr}`).toBe(0);
    const totals = JSON.parse(r.stdout) as { frames: number; connections: number; served: number };
    console.log(`${seedNote}: ${r.stdout.trim()}`);
    expect(alive(), `${seedNote}\n${agent.logs.slice(-30).join('\n')}`).toBe(true);
    expect(fetches.filter((f) => !f.ok), seedNote).toEqual([]);
    expect(totals.frames, seedNote).toBeGreaterThan(10_000);
    expect(totals.served, seedNote).toBeGreaterThan(0);
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline && (fdCount() > baseline.fds + 2 || rssKiB() - baseline.rss >= 24 * MiB)) await sleep(250);
    expect(fdCount(), seedNote).toBeLessThanOrEqual(baseline.fds + 2);
    expect(rssKiB() - baseline.rss, seedNote).toBeLessThan(24 * MiB);
    expect((await rootFetch()).ok, seedNote).toBe(true);
  }, (SECONDS + 180) * 1000);
});
