/**
 * Attacks on the accept path of the real daemon by a local user (uid 65534, its own
 * processes): connections that close or whose process exits while the agent is still
 * identifying them, running the agent out of file descriptors, and bursts of thousands
 * of connections at once. Bounded by counts, with generous time limits, so a loaded
 * machine makes them slower, not flaky.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, cli, collect, sleep, uidEntry } from '../helpers/agent-process.js';
import { waitExit } from '../helpers/processes.js';

const ATTACKER = { uid: 65534, gid: 65534 };
const WORKLOAD = { uid: 1701, gid: 1701 };
const ATTACK = join(REPO, 'test/helpers/attacker.mjs');

let agent: AgentProcess;

beforeAll(async () => {
  agent = await AgentProcess.start({ entries: [uidEntry('/w', WORKLOAD.uid)] });
});
afterAll(async () => agent?.stop());

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
const sock = (): string[] => ['-socketPath', agent.socketPath];

function attack(args: string[], timeoutMs = 120_000) {
  return collect(spawn(process.execPath, [ATTACK, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...ATTACKER }), timeoutMs);
}

/** Waits until the agent's fd count is at most `limit`, returning the last count seen. */
async function fdsSettle(limit: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let n = fdCount(agent.proc.pid!);
  while (n > limit && Date.now() < deadline) {
    await sleep(200);
    n = fdCount(agent.proc.pid!);
  }
  return n;
}

async function fetchWorks(): Promise<void> {
  const r = await cli(['api', 'fetch', 'x509', ...sock(), '-timeout', '20s'], WORKLOAD, 60_000);
  expect(r.stderr).toBe('');
  expect(r.stdout).toContain('spiffe://example.org/w');
}

describe('accept path under attack', () => {
  it('frees every fd of connections that close while the caller is being identified', async () => {
    await fetchWorks();
    const baseline = fdCount(agent.proc.pid!);
    const r = await attack(['connect-close', agent.socketPath, '3000', '64']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).done).toBe(3000);
    // Before the fix about a third of these left a pidfd and both socketpair ends behind.
    expect(await fdsSettle(baseline + 8, 30_000)).toBeLessThanOrEqual(baseline + 8);
    await fetchWorks();
  }, 180_000);

  it('frees every fd of callers whose process exits right after connecting', async () => {
    const baseline = fdCount(agent.proc.pid!);
    const code = 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1])\nexcept OSError:\n  sys.exit(3)\n';
    // Real processes, 20 at a time, each exiting the moment its connect returns.
    for (let wave = 0; wave < 15; wave++) {
      const kids = Array.from({ length: 20 }, () => spawn('python3', ['-c', code, agent.socketPath], { stdio: 'ignore', ...ATTACKER }));
      await Promise.all(kids.map(waitExit));
    }
    expect(await fdsSettle(baseline + 8, 30_000)).toBeLessThanOrEqual(baseline + 8);
    await fetchWorks();
  }, 180_000);

  it('refuses connections when out of file descriptors, logs it once, and keeps serving', async () => {
    const pid = agent.proc.pid!;
    const logsBefore = agent.logs.length;
    const open = fdCount(pid);
    // Only the soft limit moves: root here lacks CAP_SYS_RESOURCE to raise a hard limit again.
    const [soft, hard] = execFileSync('prlimit', [`--pid=${pid}`, '--nofile', '--output=SOFT,HARD', '--noheadings']).toString().trim().split(/\s+/);
    // Room for a few connections past the agent's reserve; each one needs the accepted socket, a pidfd and a socketpair.
    execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${open + 48}:${hard}`]);
    const holder = spawn(process.execPath, [ATTACK, 'hold', agent.socketPath, '200'], { stdio: ['ignore', 'pipe', 'ignore'], ...ATTACKER });
    try {
      await new Promise<void>((resolve) => holder.stdout!.on('data', (c: Buffer) => c.toString().includes('held') && resolve()));
      await sleep(1000);
      expect(agent.proc.exitCode, agent.logs.slice(-30).join('\n')).toBeNull();
      expect(agent.proc.signalCode).toBeNull();
      const lines = agent.logs.slice(logsBefore).filter((l) => /out of file descriptors/.test(l));
      expect(lines.length).toBe(1);
    } finally {
      holder.kill('SIGKILL');
      await waitExit(holder);
      if (agent.proc.exitCode === null) execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${soft}:${hard}`]);
    }
    expect(await fdsSettle(open + 8, 30_000)).toBeLessThanOrEqual(open + 8);
    await fetchWorks();
  }, 120_000);
});

describe('bursts of connections', () => {
  async function burst(n: number): Promise<{ ok: number; refused: number; errors: Record<string, number> }> {
    const r = await attack(['burst', agent.socketPath, String(n)], 240_000);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  }

  it('serves 1,000 clients connecting at once, refusing none', async () => {
    // Every connection gets the server's HTTP/2 SETTINGS: accepted, identified and handed to gRPC.
    // Load cannot fail this: 1,000 fit in the listen queue (the agent asks for somaxconn, 4096
    // here) and each client waits up to 120 s. 5,000 at once, more than the queue holds, depends
    // on how fast the agent accepts: bench/daemon-bounds.mjs measures it.
    const r = await burst(1000);
    expect(r.errors).toEqual({});
    expect(r.ok).toBe(1000);
    await fetchWorks();
  }, 300_000);
});
