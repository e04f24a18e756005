/**
 * A 20-second, half-rate run of bench/soak.mjs (the issue-7 soak: fetching clients, connect-and-exit
 * clients, HTTP/2 abuse from uid 65534, entries reloads against the real daemon). The full
 * 10-minute soak is `SOAK_SECONDS=600 node bench/soak.mjs`; this only proves the harness and
 * catches gross leaks. RSS gets 25 % here: 20 s is too short for the heap to reach its steady size.
 * Half the connection rate (100/s) so the files vitest runs beside it on a 2-core machine keep time.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO, collect } from '../helpers/agent-process.js';

it('survives 20 s of mixed load and abuse with nothing refused, leaked or unaudited', async () => {
  const child = spawn(process.execPath, [join(REPO, 'bench/soak.mjs')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SOAK_SECONDS: '20', SOAK_CHURN_RATE: '100', SOAK_SETTLE_S: '30', SOAK_TOLERANCE: '0.25' },
  });
  const r = await collect(child, 240_000);
  expect(r.stdout, r.stderr).toContain('soak: PASSED');
  expect(r.code).toBe(0);
}, 300_000);
