/**
 * Restarts that refuse nothing: with the Workload API socket held by a socket-activation
 * harness (Debian's systemd-socket-activate, see test/helpers/restart-harness.ts), 10 restarts
 * while 20 workloads keep connecting refuse no connection and leave no workload without its
 * SVID. The same loop with the agent binding its own socket (spire-agent's only way, spire issue
 * 804) is the baseline: it must refuse some, or the harness would not be able to see a refusal.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/require-tool.js';
import { restartUnderLoad, SOCKET_ACTIVATE, type RestartResult } from '../helpers/restart-harness.js';

const skip = requireTool('systemd-socket-activate', existsSync(SOCKET_ACTIVATE), 'apt-get install systemd (it ships /usr/bin/systemd-socket-activate)');
const LOAD = { restarts: 10, clients: 20, servingMs: 1000 };

function summary(name: string, r: RestartResult): string {
  const attempts = r.clients.reduce((n, c) => n + c.attempts, 0);
  const ok = r.clients.reduce((n, c) => n + c.ok, 0);
  return `${name}: ${attempts} fetches, ${ok} ok, ${r.refused} refused, other failures ${JSON.stringify(r.failed)}, ${r.withoutSvid} clients without an SVID; downtime per restart ${r.downtimeMs.join(',')} ms`;
}

describe.skipIf(skip)('restarts under load', () => {
  it('with the socket passed by systemd-socket-activate: no connection refused, every client ends with its SVID', async () => {
    const r = await restartUnderLoad({ activated: true, ...LOAD });
    console.log(summary('socket-activated', r));
    expect(r.logs.filter((l) => l.includes('Serving on the socket passed by systemd')).length).toBe(LOAD.restarts + 1);
    expect(r.refused).toBe(0);
    expect(r.withoutSvid).toBe(0);
    expect(r.clients.every((c) => c.ok > 0)).toBe(true);
  }, 240_000);

  it('baseline, the agent binding its own socket: the same restarts refuse connections', async () => {
    const r = await restartUnderLoad({ activated: false, ...LOAD });
    console.log(summary('self-bound (baseline)', r));
    expect(r.refused).toBeGreaterThan(0);
    // They reconnect once the agent is back: refused, not lost.
    expect(r.withoutSvid).toBe(0);
  }, 240_000);
});
