/**
 * Restarts that refuse nothing and cut nothing: with the Workload API socket held by a
 * socket-activation harness (Debian's systemd-socket-activate, see test/helpers/restart-harness.ts),
 * 10 restarts while 20 workloads keep connecting refuse no connection, and every fetch a stopping
 * agent had accepted is answered: no reset, no UNAVAILABLE, no stream closed without its answer
 * (before the drain in uds-listener.ts close(), one such run counted 61 resets, 15 UNAVAILABLE and
 * 7 streams closed unanswered). The same loop with the agent binding its own socket (spire-agent's
 * only way, spire issue 804) is the baseline: it must refuse some, or the harness would not be able
 * to see a refusal; what it had accepted or queued before it stopped is answered there too.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_MAIN, collect } from '../helpers/agent-process.js';
import { requireTool } from '../helpers/require-tool.js';
import { prepareAgentDir, restartUnderLoad, SOCKET_ACTIVATE, type RestartResult } from '../helpers/restart-harness.js';

const skip = requireTool('systemd-socket-activate', existsSync(SOCKET_ACTIVATE), 'apt-get install systemd (it ships /usr/bin/systemd-socket-activate)');
const LOAD = { restarts: 10, clients: 20, servingMs: 1000 };

function summary(name: string, r: RestartResult): string {
  const attempts = r.clients.reduce((n, c) => n + c.attempts, 0);
  const ok = r.clients.reduce((n, c) => n + c.ok, 0);
  return (
    `${name}: ${attempts} fetches, ${ok} ok, ${r.refused} refused, ${r.resets} reset, ${r.unavailable} UNAVAILABLE, ${r.otherFailures} other failures ` +
    `${JSON.stringify(r.failed)}, ${r.withoutSvid} clients without an SVID; downtime per restart ${r.downtimeMs.join(',')} ms`
  );
}

describe.skipIf(skip)('restarts under load', () => {
  it('with the socket passed by systemd-socket-activate: no connection refused, no fetch cut, every client ends with its SVID', async () => {
    const r = await restartUnderLoad({ activated: true, ...LOAD });
    console.log(summary('socket-activated', r));
    expect(r.logs.filter((l) => l.includes('Serving on the socket passed by systemd')).length).toBe(LOAD.restarts + 1);
    expect(r.refused).toBe(0);
    expect({ resets: r.resets, unavailable: r.unavailable, other: r.otherFailures, failed: r.failed }).toEqual({ resets: 0, unavailable: 0, other: 0, failed: {} });
    expect(r.withoutSvid).toBe(0);
    expect(r.clients.every((c) => c.ok > 0)).toBe(true);
  }, 240_000);

  it('a watch open across restarts ends with GOAWAY on its connection, then UNAVAILABLE, and resumes on the next agent', async () => {
    const r = await restartUnderLoad({ activated: true, restarts: 5, clients: 0, watchers: 5, servingMs: 1000 });
    const ends: Record<string, number> = {};
    for (const w of r.watches) for (const [how, n] of Object.entries(w.ends)) ends[how] = (ends[how] ?? 0) + n;
    console.log(`socket-activated watches: ${JSON.stringify(r.watches.map((w) => [w.watches, w.updates]))} (watches, updates per watcher); ended ${JSON.stringify(ends)}`);
    // Each restart ends each watch once, GOAWAY first, so a gRPC client retries on a new connection, never the old one.
    // (This held before the drain too, for a watch that had its first answer; the test pins the order.)
    expect(ends).toEqual({ 'grpc-status 14 after GOAWAY': 5 * 5 });
    // One watch per agent, and its first answer from each.
    for (const w of r.watches) expect(w).toMatchObject({ watches: 6, updates: 6 });
  }, 240_000);

  it('baseline, the agent binding its own socket: the same restarts refuse connections, and cut none they accepted', async () => {
    const r = await restartUnderLoad({ activated: false, ...LOAD });
    console.log(summary('self-bound (baseline)', r));
    expect(r.refused).toBeGreaterThan(0);
    // What the stopping agent had accepted, or held in its listen queue, is answered, not reset.
    expect({ resets: r.resets, unavailable: r.unavailable, other: r.otherFailures, failed: r.failed }).toEqual({ resets: 0, unavailable: 0, other: 0, failed: {} });
    // They reconnect once the agent is back: refused, not lost.
    expect(r.withoutSvid).toBe(0);
  }, 240_000);
});

describe.skipIf(skip)('a passed socket the agent must not serve', () => {
  /** One agent under systemd-socket-activate listening on `listenOn`, started by a first connection; its exit and output. */
  async function activatedOnce(listenOn: (sock: string, dir: string) => string, mode: number) {
    const { dir, sock, conf } = await prepareAgentDir();
    const path = listenOn(sock, dir);
    try {
      const child = spawn(SOCKET_ACTIVATE, ['-l', path, '--fdname=workload-api', process.execPath, AGENT_MAIN, 'run', '-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      const done = collect(child, 30_000);
      for (let i = 0; i < 200 && !(await stat(path).catch(() => undefined))?.isSocket(); i++) await new Promise((r) => setTimeout(r, 50));
      await chmod(path, mode);
      connect(path).on('error', () => undefined);
      return await done;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('a socket file with another mode than 0777: refused at start, naming SocketMode=0777', async () => {
    const r = await activatedOnce((sock) => sock, 0o755);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the socket systemd passed, is a socket owned by uid \d+ with mode 0755; .*set SocketMode=0777/);
  });

  it('a socket on a path agent.conf does not name: refused at start, naming both paths', async () => {
    const r = await activatedOnce((_sock, dir) => join(dir, 'public', 'other.sock'), 0o777);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/systemd passed fd 3 "workload-api" bound to \S+other\.sock, which no configured socket uses \(\S+api\.sock\)/);
  });
});
