/**
 * HTTP/2 abuse of the real daemon by another local user (uid 65534, its own process):
 * CONTINUATION flood, an oversized frame, a huge header block and rapid reset. Each must
 * end with GOAWAY (right error code) and the connection closed by the agent, its fds
 * freed, RSS back near where it was, and other clients served meanwhile.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, cli, collect, sleep, uidEntry } from '../helpers/agent-process.js';

const ATTACKER = { uid: 65534, gid: 65534 };
const WORKLOAD = { uid: 1702, gid: 1702 };
const ATTACK = join(REPO, 'test/helpers/attacker.mjs');
/** RSS is read in KiB. */
const MiB = 1024;
const ONE_MIB_BYTES = 1024 * 1024;

let agent: AgentProcess;
let baselineFds = 0;

beforeAll(async () => {
  agent = await AgentProcess.start({ entries: [uidEntry('/w', WORKLOAD.uid)] });
  await fetchWorks();
  baselineFds = fdCount();
});
afterAll(async () => agent?.stop());

const fdCount = (): number => readdirSync(`/proc/${agent.proc.pid}/fd`).length;
const rssKiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.proc.pid}/status`, 'utf8'))![1]);

async function fetchWorks(): Promise<void> {
  const r = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath, '-timeout', '20s'], WORKLOAD, 60_000);
  expect(r.stderr).toBe('');
  expect(r.stdout).toContain('spiffe://example.org/w');
}

async function h2Attack(kind: string) {
  const child = spawn(process.execPath, [ATTACK, 'h2', agent.socketPath, kind], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ATTACK_SECONDS: '30' },
    ...ATTACKER,
  });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB())), 50);
  const r = await collect(child, 90_000);
  clearInterval(sampler);
  expect(r.code, r.stderr).toBe(0);
  return { ...(JSON.parse(r.stdout) as { goaway: boolean; errorCode: number | null; closed: boolean; closedMs: number | null; sent: number }), peak };
}

async function settle(): Promise<{ fds: number; rss: number }> {
  const deadline = Date.now() + 20_000;
  while (fdCount() > baselineFds + 4 && Date.now() < deadline) await sleep(200);
  return { fds: fdCount(), rss: rssKiB() };
}

describe('HTTP/2 abuse from another local user', () => {
  const cases: [string, number, number][] = [
    // kind, expected GOAWAY code, most bytes the attacker may get in before the agent closes
    ['continuation', 0xb, ONE_MIB_BYTES],
    ['big-frame', 0x6, ONE_MIB_BYTES],
    ['big-block', 0xb, ONE_MIB_BYTES],
    ['rapid-reset', 0xb, ONE_MIB_BYTES],
  ];
  it.each(cases)('%s: GOAWAY, closed by the agent, nothing left behind', async (kind, code, maxSent) => {
    const rssBefore = rssKiB();
    const served = fetchWorks();
    const r = await h2Attack(kind);
    await served;
    // Before the limits: the flood ran to 64 MiB with RSS growing by ~100 MB that stayed,
    // the 16 MiB frame and 8 MiB block were buffered whole, rapid reset was never closed.
    expect(r.goaway).toBe(true);
    expect(r.errorCode).toBe(code);
    expect(r.closed).toBe(true);
    expect(r.sent).toBeLessThan(maxSent);
    expect(r.peak - rssBefore).toBeLessThan(48 * MiB);
    const after = await settle();
    expect(after.fds).toBeLessThanOrEqual(baselineFds + 4);
    expect(after.rss - rssBefore).toBeLessThan(32 * MiB);
    await fetchWorks();
  }, 180_000);

  it('logs offending connections once a minute, not once each', async () => {
    const lines = agent.logs.filter((l) => l.includes('broke a protocol limit'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(2);
  });
});
