/**
 * Wall-clock jumps with the real daemon and real clients under libfaketime (Debian's
 * `faketime` package): the offset lives in a file that every process re-reads on each
 * clock call, so the test can step the host's wall clock while the agent runs, as a
 * suspended host resuming or an operator setting the clock would. The monotonic clock
 * is left alone (FAKETIME_DONT_FAKE_MONOTONIC), like the kernel's across such a step.
 *
 * The clients (`api fetch x509`, `api watch`) run under the same faked clock and verify
 * the SVID chain at their current time, so a fetch succeeds only once the agent serves
 * an SVID and a CA that are valid at the new time. Without libfaketime the test is
 * skipped with a notice, except in CI, where it fails (.ci/run installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_MAIN, AgentProcess, collect, Output, sleep, uidEntry, type CliResult } from '../helpers/agent-process.js';
import { requireTool } from '../helpers/require-tool.js';

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'].find((p) =>
  existsSync(p),
);
const noFaketime = requireTool('libfaketime', LIBFAKETIME !== undefined, 'the wall-clock jump tests run the daemon under it; apt-get install faketime');

const DAY = 86_400_000;
/** "Within seconds": the agent looks at the wall clock every 5 s; the rest is client start-up on a busy box. */
const RECOVERY_MS = 20_000;

let dir: string;
let rc: string;
let env: Record<string, string>;
let agent: AgentProcess;
let watch: ChildProcess;
let watched: Output;

/** Steps every faked process's wall clock to real time + offset. */
async function setOffset(ms: number): Promise<void> {
  // faketime's relative format: seconds with a sign.
  await writeFile(`${rc}.tmp`, `${ms >= 0 ? '+' : '-'}${Math.abs(Math.round(ms / 1000))}\n`);
  const { rename } = await import('node:fs/promises');
  await rename(`${rc}.tmp`, rc);
}

function cliFaked(args: string[]): Promise<CliResult> {
  return collect(spawn(process.execPath, [AGENT_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } }), 15_000);
}

/** Polls `api fetch x509` until it succeeds (the SVID chain verifies at the faked now); returns how long that took. */
async function recovered(): Promise<{ ms: number; last: CliResult }> {
  const start = Date.now();
  let last: CliResult;
  do {
    last = await cliFaked(['api', 'fetch', 'x509', '-socketPath', agent.socketPath]);
    if (last.code === 0) return { ms: Date.now() - start, last };
    await sleep(500);
  } while (Date.now() - start < RECOVERY_MS);
  throw new Error(`the agent did not recover within ${RECOVERY_MS} ms; last fetch:\n${last.stdout}${last.stderr}\nagent log tail:\n${agent.logs.slice(-15).join('\n')}`);
}

const received = (): number => (watched.text.match(/^Received /gm) ?? []).length;

describe.skipIf(noFaketime)('wall-clock jumps (real daemon under libfaketime)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spiffe-faketime-'));
    rc = join(dir, 'faketime.rc');
    await setOffset(0);
    env = {
      LD_PRELOAD: LIBFAKETIME!,
      FAKETIME_TIMESTAMP_FILE: rc,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
    agent = await AgentProcess.start({
      entries: [uidEntry('/me', process.getuid!())],
      // Short enough that a one-day jump is far past the CA's expiry, long enough that no
      // rotation falls due on its own during the test.
      embedded: 'ca_ttl = "2h"\n  default_x509_svid_ttl = "1h"',
      env,
    });
    watch = spawn(process.execPath, [AGENT_MAIN, 'api', 'watch', '-socketPath', agent.socketPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });
    watched = new Output(watch);
    await watched.until((t) => /^Received /m.test(t), 15_000, 'the first X.509 context on the watch stream');
    expect((await cliFaked(['api', 'fetch', 'x509', '-socketPath', agent.socketPath])).code).toBe(0);
  });

  afterAll(async () => {
    watch?.kill('SIGKILL');
    await agent?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('recovers within seconds, without a restart, after the wall clock jumps a day ahead past the CA expiry', async () => {
    const streamed = received();
    await setOffset(DAY);
    // First with nobody asking: the agent's own wall-clock check must notice the jump and
    // push a fresh SVID on the open stream.
    await watched.until(() => received() > streamed, RECOVERY_MS, 'a new X.509 context on the open stream after the jump');
    const r = await recovered();
    expect(r.ms).toBeLessThan(RECOVERY_MS);
    expect(agent.proc.exitCode).toBeNull();
  });

  it('recovers within seconds after the wall clock jumps back two days, before the CA notBefore', async () => {
    const streamed = received();
    await setOffset(-DAY);
    await watched.until(() => received() > streamed, RECOVERY_MS, 'a new X.509 context on the open stream after the jump');
    const r = await recovered();
    expect(r.ms).toBeLessThan(RECOVERY_MS);
    expect(agent.proc.exitCode).toBeNull();
  });
});
