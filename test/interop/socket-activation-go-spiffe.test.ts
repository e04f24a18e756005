/**
 * A go-spiffe (grpc-go) watcher across restarts under socket activation: the stopping agent sends
 * GOAWAY on the watcher's connection, then ends the watch with UNAVAILABLE; go-spiffe retries on a
 * new connection, which waits in the socket systemd holds (here Debian's systemd-socket-activate,
 * see test/helpers/restart-harness.ts) and is answered by the next agent. go-spiffe calls
 * OnX509ContextWatchError for every end of a watch (workloadapi/client.go retries anything but
 * Canceled and InvalidArgument), so each restart shows up there exactly once, as Unavailable; an
 * X509Source built on it keeps its SVID throughout. No other code, and one update per agent.
 * (This held before the drain too, for a watch that had its first answer; the test pins it.)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/require-tool.js';
import { restartUnderLoad, SOCKET_ACTIVATE } from '../helpers/restart-harness.js';
import { GO_CLIENT_BUILT } from './harness.js';

const skip =
  requireTool('systemd-socket-activate', existsSync(SOCKET_ACTIVATE), 'apt-get install systemd (it ships /usr/bin/systemd-socket-activate)') ||
  requireTool('go-client', existsSync(GO_CLIENT_BUILT), 'bash test/interop/setup.sh builds it');
const RESTARTS = 4;

interface WatchLine {
  update?: boolean;
  error?: string;
  code?: string;
  t: number;
}

describe.skipIf(skip)('go-spiffe watch across socket-activated restarts', () => {
  it('each restart ends the watch once with Unavailable, and the next agent answers it', async () => {
    const lines: WatchLine[] = [];
    let out = '';
    let stop = (): Promise<void> => Promise.resolve();
    await restartUnderLoad({
      activated: true,
      restarts: RESTARTS,
      // systemd-socket-activate starts the first agent on the first connection: one fetching client makes it.
      clients: 1,
      servingMs: 2000,
      started: async (sock) => {
        const child = spawn(GO_CLIENT_BUILT, ['watch', '-duration', '120s'], { env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: `unix://${sock}` }, stdio: ['ignore', 'pipe', 'inherit'] });
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const parts = out.split('\n');
          out = parts.pop()!;
          for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as WatchLine);
        });
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        stop = async () => {
          child.kill('SIGTERM');
          await exited;
        };
        for (let i = 0; i < 200 && !lines.some((l) => l.update); i++) await new Promise((r) => setTimeout(r, 50));
        if (!lines.some((l) => l.update)) throw new Error(`go-spiffe got no first update: ${JSON.stringify(lines)}`);
      },
    }).finally(() => stop());
    const errors = lines.filter((l) => l.error !== undefined);
    const updates = lines.filter((l) => l.update);
    // From each error to the update after it: go-spiffe's backoff plus the next agent's start.
    const gaps = errors.map((e) => (updates.find((u) => u.t > e.t)?.t ?? NaN) - e.t);
    console.log(`go-spiffe watch: ${updates.length} updates, errors ${JSON.stringify(errors.map((e) => e.code))}, error → next update ${gaps.join(',')} ms`);
    // The harness stops the last agent before the watcher: that last end has no update after it.
    const answered = gaps.filter((g) => g >= 0);
    expect(errors.map((e) => e.code).every((c) => c === 'Unavailable')).toBe(true);
    expect(answered).toHaveLength(RESTARTS);
    expect(errors.length - answered.length).toBeLessThanOrEqual(1);
    expect(updates.length).toBe(RESTARTS + 1);
  }, 240_000);
});
