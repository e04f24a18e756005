/**
 * The real daemon with retry_bootstrap at its default (true) and no SPIRE server listening: it must
 * stay up through the backoff waits and keep attesting, logging the failure once (warn) and its
 * repeats at debug. Before start-up held the process, Node exited during the first wait (its
 * timers do not keep the process alive) with an unsettled top-level await.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_MAIN } from '../helpers/agent-process.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('retry_bootstrap in the daemon', () => {
  it('keeps the process up through the backoff and keeps attesting; one warning, repeats at debug', async () => {
    const dir = await mkdtemp('/tmp/spiffe-agent-retry-');
    dirs.push(dir);
    const conf = join(dir, 'agent.conf');
    await writeFile(
      conf,
      `agent {
    trust_domain = "example.org"
    data_dir = "${dir}/data"
    socket_path = "${dir}/api.sock"
    server_address = "127.0.0.1"
    server_port = ${await closedPort()}
    insecure_bootstrap = true
    join_token = "not-a-real-token"
    log_level = "DEBUG"
    log_format = "json"
}
plugins {
    NodeAttestor "join_token" { plugin_data {} }
    KeyManager "memory" { plugin_data {} }
    WorkloadAttestor "unix" { plugin_data {} }
}
`,
    );
    const child = spawn(process.execPath, [AGENT_MAIN, 'run', '-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    let exit: number | null | undefined;
    child.on('exit', (code) => (exit = code));
    // First wait 4.5-5.5 s, second 6.75-8.25 s: by 13 s there were two retries at most, one at least.
    await new Promise((r) => setTimeout(r, 13_000));
    const alive = exit === undefined;
    child.kill('SIGTERM');
    await new Promise((r) => (exit === undefined ? child.once('exit', r) : r(undefined)));
    expect(alive, `the daemon exited during the backoff (code ${exit}):\n${out}`).toBe(true);
    const records = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r['msg'] === 'Failed to retrieve attestation result');
    expect(records.length, out).toBeGreaterThanOrEqual(2);
    expect(records.map((r) => r['level'])).toEqual(['warning', ...records.slice(1).map(() => 'debug')]);
  }, 30_000);
});
