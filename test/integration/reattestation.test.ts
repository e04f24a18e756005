/**
 * Live re-attestation (beyond spire-agent): a real workload execs into another binary
 * under an open stream and loses the identity bound to its old path; a workload whose
 * process is gone stops counting as a subscriber.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, chmodSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, Output, REPO, TD, PARENT_ID, sleep } from '../helpers/agent-process.js';

let agent: AgentProcess;
const W = { uid: 1141, gid: 1141 };
const node = realpathSync(process.execPath);

beforeAll(async () => {
  agent = await AgentProcess.start({
    agent: 'reattest_interval = "1s"',
    unixPluginData: 'discover_workload_path = true',
    entries: [
      { spiffe_id: `spiffe://${TD}/node-bound`, parent_id: PARENT_ID, selectors: [{ type: 'unix', value: `uid:${W.uid}` }, { type: 'unix', value: `path:${node}` }] },
      { spiffe_id: `spiffe://${TD}/uid-only`, parent_id: PARENT_ID, selectors: [{ type: 'unix', value: `uid:${W.uid}` }] },
    ],
  });
});
afterAll(async () => agent?.stop());

/** A real workload that opens a stream, then execs /bin/sleep (a copy) under it, keeping its pid and connection. */
function execWorkload() {
  // The exec target must be reachable by the test uid; /bin/sleep is, copied for a stable path.
  const target = join(agent.dir, 'sleep');
  copyFileSync('/bin/sleep', target);
  chmodSync(target, 0o755);
  const child = spawn(node, [join(REPO, 'test/fixtures/clients/watch-then-exec.mjs'), REPO, agent.socketPath, target], {
    ...W,
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: REPO,
  });
  const withdrawn = (): string | undefined =>
    agent.logs.find((l) => l.includes('decision=withdrawn') && l.includes(`pid=${child.pid}`) && l.includes('node-bound'));
  return { target, child, out: new Output(child), withdrawn };
}

/** Waits (up to a generous 30 s) for the re-attestation that notices the exec. */
async function waitWithdrawn(w: ReturnType<typeof execWorkload>): Promise<string | undefined> {
  const t0 = Date.now();
  while (!w.withdrawn() && Date.now() - t0 < 30_000) await sleep(100);
  return w.withdrawn();
}

describe('live re-attestation', () => {
  it('withdraws the path-bound identity on re-attestation after the workload execs another binary', async () => {
    const w = execWorkload();
    try {
      await w.out.until((t) => t.includes('UPDATE'), 10_000, 'the first update');
      expect(w.out.text).toContain(`UPDATE spiffe://${TD}/node-bound,spiffe://${TD}/uid-only`);
      // The reason proves the re-attestation loop did it; how soon (within the 1 s interval) is
      // bench/daemon-bounds.mjs's to measure, so a loaded machine cannot fail this.
      expect(await waitWithdrawn(w)).toMatch(/reason="caller selectors changed on re-attestation"/);
      const regrant = agent.logs.filter((l) => l.includes('decision=granted') && l.includes(`pid=${w.child.pid}`)).at(-1);
      expect(regrant).toContain(`path:${w.target}`);
      expect(regrant).toContain('uid-only');
      expect(regrant).not.toContain('node-bound');
    } finally {
      w.child.kill('SIGKILL');
    }
  });

  it('stops counting a workload whose process exited as a subscriber', async () => {
    const { spawnCli } = await import('../helpers/agent-process.js');
    const watch = spawnCli(['api', 'watch', '-socketPath', agent.socketPath], W);
    const out = new Output(watch);
    await out.until((t) => t.includes('uid-only'), 10_000, 'the first update');
    const opened = agent.logs.length;
    watch.kill('SIGKILL');
    // Proof that re-attestation ran after the kill: another workload, started now, execs and is
    // withdrawn by a re-attestation pass (one pass covers every open stream).
    const later = execWorkload();
    try {
      await later.out.until((t) => t.includes('UPDATE'), 10_000, 'the later workload\'s first update');
      expect(await waitWithdrawn(later)).toBeDefined();
    } finally {
      later.child.kill('SIGKILL');
    }
    // After exit, no further decisions are made for that pid: the stream is gone, not re-attested forever.
    expect(agent.logs.slice(opened).filter((l) => l.includes(`pid=${watch.pid}`) && l.includes('decision='))).toEqual([]);
  });
});
